// Unit test of the error mapping: a grpc-js error with a google.rpc.Status trailer becomes a SimulatorError with reason and field violations (no daemon needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

import { SimulatorError, toSimulatorError } from '../src/index.js';

// The real google.rpc field numbers, written independently of src/errors.js so a
// wrong number there would make this test fail.
const root = protobuf.parse(`
syntax = "proto3";
package t;
message Any { string type_url = 1; bytes value = 2; }
message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
message FieldViolation { string field = 1; string description = 2; }
message BadRequest { repeated FieldViolation field_violations = 1; }
message Other { string x = 1; }
`).root;
const T = (n) => root.lookupType(`t.${n}`);
const pack = (typeName, type, obj) => ({ typeUrl: `type.googleapis.com/${typeName}`, value: T(type).encode(T(type).fromObject(obj)).finish() });

function serviceError(code, details, statusObject) {
  const metadata = new grpc.Metadata();
  if (statusObject) metadata.set('grpc-status-details-bin', Buffer.from(T('Status').encode(T('Status').fromObject(statusObject)).finish()));
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata });
}

test('ErrorInfo and BadRequest details are decoded', () => {
  const err = toSimulatorError(serviceError(grpc.status.INVALID_ARGUMENT, 'stubs[0].request.path.regex: bad', {
    code: grpc.status.INVALID_ARGUMENT,
    message: 'stubs[0].request.path.regex: bad',
    details: [
      pack('google.rpc.ErrorInfo', 'ErrorInfo', { reason: 'INVALID_STUB', domain: 'simulatord', metadata: { session: 'tenants/a/sessions/b' } }),
      pack('google.rpc.BadRequest', 'BadRequest', { fieldViolations: [{ field: 'stubs[0].request.path.regex', description: 'bad' }] }),
      pack('example.Unknown', 'Other', { x: 'ignored' }),
    ],
  }));
  assert.ok(err instanceof SimulatorError);
  assert.ok(err instanceof Error);
  assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(err.codeName, 'INVALID_ARGUMENT');
  assert.equal(err.reason, 'INVALID_STUB');
  assert.equal(err.domain, 'simulatord');
  assert.deepEqual(err.metadata, { session: 'tenants/a/sessions/b' });
  assert.deepEqual(err.fieldViolations, [{ field: 'stubs[0].request.path.regex', description: 'bad' }]);
  assert.equal(err.message, 'INVALID_ARGUMENT (INVALID_STUB): stubs[0].request.path.regex: bad');
  assert.equal(err.cause.code, grpc.status.INVALID_ARGUMENT);
});

test('an error without details keeps code and message', () => {
  const err = toSimulatorError(serviceError(grpc.status.UNAVAILABLE, 'connection refused'));
  assert.equal(err.code, grpc.status.UNAVAILABLE);
  assert.equal(err.reason, '');
  assert.deepEqual(err.fieldViolations, []);
  assert.equal(err.message, 'UNAVAILABLE: connection refused');
});

test('a corrupt trailer does not hide the status', () => {
  const raw = serviceError(grpc.status.NOT_FOUND, 'gone');
  raw.metadata.set('grpc-status-details-bin', Buffer.from([0xff, 0xff, 0xff]));
  const err = toSimulatorError(raw);
  assert.equal(err.code, grpc.status.NOT_FOUND);
  assert.equal(err.details, 'gone');
});

test('non-gRPC errors pass through unchanged', () => {
  const plain = new TypeError('nope');
  assert.equal(toSimulatorError(plain), plain);
});
