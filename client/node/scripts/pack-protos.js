// Copies the repository's protos into the package before `npm pack`/`npm publish` and removes them after, so a published package carries its own .proto files.
import { cpSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const target = resolve(pkg, 'protos');
// Always start from a clean copy so a deleted .proto never lingers in a package.
rmSync(target, { recursive: true, force: true });
if (process.argv[2] === 'copy') {
  cpSync(resolve(pkg, '../../protos'), target, { recursive: true, filter: (src) => !src.includes('/released') });
}
