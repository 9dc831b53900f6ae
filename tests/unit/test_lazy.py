"""Caches of lazily imported libraries survive pytester's sys.modules restore (simulatord.lazy)."""

from __future__ import annotations

import subprocess
import sys

# Drops jsonpath and jinja2 from sys.modules after their first use, as pytester does after a test, then asks for
# violations that only their exception classes report: both must still be field violations, not exceptions.
SCRIPT = """
import sys
from simulatord.errors import SpecErrors
from simulatord.matching.matchers import body_test, BodyKind
from simulatord.responding import templating

def violations(check):
    errors = SpecErrors()
    check(errors)
    return [v.field for v in errors.violations]

json_path = lambda errors: body_test(BodyKind.JSON_PATH, "$.a[", "body", errors)
template = lambda errors: templating.compile_text("{{ request.method", "body_text", errors)
first = violations(json_path) + violations(template)
for name in [m for m in sys.modules if m.split(".")[0] in ("jsonpath", "jinja2")]:
    del sys.modules[name]
print(first == violations(json_path) + violations(template) and len(first) == 2)
"""


def test_a_library_dropped_from_sys_modules_is_rebuilt_not_mixed_with_its_old_classes() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr[-3000:]
