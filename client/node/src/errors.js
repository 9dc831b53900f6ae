// Turns gRPC failures from simulatord into SimulatorError: the status code plus the ErrorInfo reason and BadRequest field violations decoded from the `grpc-status-details-bin` trailer.
import grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

// Only the google.rpc messages the daemon sends are declared, as a wire-compatible
// subset of google/rpc/{status,error_details}.proto (same field numbers), so the
// package needs neither googleapis protos on disk nor a code generator.
const RPC_PROTO = `
syntax = "proto3";
package google.rpc;
message Any { string type_url = 1; bytes value = 2; }
message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
message BadRequest {
  message FieldViolation { string field = 1; string description = 2; string reason = 3; }
  repeated FieldViolation field_violations = 1;
}
message RetryInfo { Duration retry_delay = 1; }
message Duration { int64 seconds = 1; int32 nanos = 2; }
`;
// `Any` and `Duration` are declared inside google.rpc on purpose: protobufjs would
// otherwise need the google/protobuf descriptors loaded into this private root.

const root = protobuf.parse(RPC_PROTO, { keepCase: false }).root;
const Status = root.lookupType('google.rpc.Status');
const ErrorInfo = root.lookupType('google.rpc.ErrorInfo');
const BadRequest = root.lookupType('google.rpc.BadRequest');
const RetryInfo = root.lookupType('google.rpc.RetryInfo');

const TYPE_PREFIX = 'type.googleapis.com/';

/** Names of gRPC status codes by number, e.g. 5 → 'NOT_FOUND'. */
const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));

/**
 * @typedef {object} FieldViolation
 * @property {string} field        Path of the bad field, e.g. `stubs[0].request.path.regex`.
 * @property {string} description  Why it is bad.
 */

/** An error answered by simulatord (or by the gRPC transport on its way). */
export class SimulatorError extends Error {
  /**
   * @param {object} init
   * @param {number} init.code                     gRPC status code (see `grpc.status`).
   * @param {string} init.message                  The status message.
   * @param {string} [init.reason]                 ErrorInfo.reason, e.g. `SESSION_NOT_FOUND`.
   * @param {string} [init.domain]                 ErrorInfo.domain, `simulatord` for the daemon's own errors.
   * @param {Record<string,string>} [init.metadata] ErrorInfo.metadata, naming the resource concerned.
   * @param {FieldViolation[]} [init.fieldViolations] BadRequest field violations.
   * @param {number} [init.retryDelayMs]           RetryInfo delay, when the daemon sent one.
   * @param {Error} [init.cause]                   The original grpc-js error.
   */
  constructor({ code, message, reason = '', domain = '', metadata = {}, fieldViolations = [], retryDelayMs, cause }) {
    const codeName = CODE_NAMES[code] ?? String(code);
    // The reason is shown only when it adds something to the code name.
    super(`${codeName}${reason && reason !== codeName ? ` (${reason})` : ''}: ${message}`, { cause });
    this.name = 'SimulatorError';
    /** gRPC status code number. */
    this.code = code;
    /** gRPC status code name, e.g. `INVALID_ARGUMENT`. */
    this.codeName = codeName;
    /** The status message as the daemon wrote it. */
    this.details = message;
    this.reason = reason;
    this.domain = domain;
    this.metadata = metadata;
    this.fieldViolations = fieldViolations;
    this.retryDelayMs = retryDelayMs;
  }
}

/**
 * @typedef {object} StatusDetails
 * @property {number} code
 * @property {string} message
 * @property {string} reason
 * @property {string} domain
 * @property {Record<string,string>} metadata
 * @property {FieldViolation[]} fieldViolations
 * @property {number} [retryDelayMs]
 */

/**
 * Decodes a serialized google.rpc.Status (the `grpc-status-details-bin` trailer).
 * @param {Uint8Array} bytes
 * @returns {StatusDetails}
 */
export function decodeStatusDetails(bytes) {
  const status = Status.toObject(Status.decode(bytes), { defaults: true });
  /** @type {StatusDetails} */
  const out = { code: status.code, message: status.message, reason: '', domain: '', metadata: {}, fieldViolations: [] };
  for (const any of status.details) {
    // Unknown detail types are skipped: newer daemons may add some.
    const type = any.typeUrl.startsWith(TYPE_PREFIX) ? any.typeUrl.slice(TYPE_PREFIX.length) : any.typeUrl;
    if (type === 'google.rpc.ErrorInfo') {
      const info = ErrorInfo.toObject(ErrorInfo.decode(any.value), { defaults: true });
      Object.assign(out, { reason: info.reason, domain: info.domain, metadata: info.metadata });
    } else if (type === 'google.rpc.BadRequest') {
      const bad = BadRequest.toObject(BadRequest.decode(any.value), { defaults: true });
      out.fieldViolations.push(...bad.fieldViolations.map((/** @type {FieldViolation} */ { field, description }) => ({ field, description })));
    } else if (type === 'google.rpc.RetryInfo') {
      const retry = RetryInfo.toObject(RetryInfo.decode(any.value), { defaults: true, longs: Number });
      const d = retry.retryDelay ?? { seconds: 0, nanos: 0 };
      out.retryDelayMs = d.seconds * 1000 + d.nanos / 1e6;
    }
  }
  return out;
}

/**
 * Converts a grpc-js ServiceError into a SimulatorError; anything else is returned unchanged.
 * @param {any} err
 * @returns {Error}
 */
export function toSimulatorError(err) {
  if (err instanceof SimulatorError || typeof err?.code !== 'number') return err;
  const init = { code: err.code, message: err.details ?? err.message, cause: err };
  const raw = err.metadata?.get?.('grpc-status-details-bin')?.[0];
  if (raw) {
    try {
      const decoded = decodeStatusDetails(raw);
      Object.assign(init, decoded, { code: err.code, message: init.message || decoded.message });
    } catch {
      // A corrupt trailer must not hide the status itself; keep code and message.
    }
  }
  return new SimulatorError(init);
}
