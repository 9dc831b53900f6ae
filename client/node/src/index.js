// The friendly Node.js layer over simulatord's gRPC control service: sessions, stubs, and reading, waiting for and watching exchanges.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

import { SimulatorError, decodeStatusDetails, toSimulatorError } from './errors.js';

export { SimulatorError, decodeStatusDetails, toSimulatorError };
export const status = grpc.status;

const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SERVICE_PROTO = 'simulatord/v1/simulator_service.proto';

/**
 * Where the .proto files are: $SIMULATORD_PROTOS, else a copy packed into the
 * package (`npm pack` copies them), else the repository's `protos/` two levels up,
 * so the package works both from a checkout and once published.
 * @returns {string}
 */
export function protosDir() {
  const candidates = [process.env.SIMULATORD_PROTOS, join(PACKAGE_DIR, 'protos'), resolve(PACKAGE_DIR, '../../protos')];
  for (const dir of candidates) {
    if (dir && existsSync(join(dir, SERVICE_PROTO))) return dir;
  }
  throw new Error(`simulatord protos not found (looked in ${candidates.filter(Boolean).join(', ')}); set SIMULATORD_PROTOS`);
}

/** @type {any} */
let cachedService;
/** Loads the service definition once per process: parsing the protos takes tens of milliseconds. */
function serviceConstructor() {
  if (!cachedService) {
    const definition = protoLoader.loadSync(SERVICE_PROTO, {
      includeDirs: [protosDir()],
      // camelCase fields (baseUrl, startSequence) are what JS code expects.
      keepCase: false,
      // int64 values (sequences, counts) fit easily in a double; Long objects would leak into user code.
      longs: Number,
      enums: String,
      // Absent scalars come back as their defaults, so `session.baseUrl` is never undefined.
      defaults: true,
      // Adds a virtual property naming the set member of each oneof, e.g. `event: 'exchange'`.
      oneofs: true,
    });
    const loaded = /** @type {any} */ (grpc.loadPackageDefinition(definition));
    cachedService = loaded.simulatord.v1.SimulatorService;
  }
  return cachedService;
}

/**
 * A duration in milliseconds as a google.protobuf.Duration.
 * @param {number} ms
 * @returns {{seconds:number, nanos:number}}
 */
export function duration(ms) {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/**
 * A google.protobuf.Timestamp (as this client decodes it, e.g. `session.expireTime`) as a Date.
 * @param {{seconds:number, nanos:number}} timestamp
 * @returns {Date}
 */
export function toDate(timestamp) {
  return new Date(timestamp.seconds * 1000 + Math.floor(timestamp.nanos / 1e6));
}

/**
 * A plain JSON value as a google.protobuf.Value, for `bodyJson`, `jsonEquals`, `jsonSubset` and the like.
 * @param {unknown} value
 * @returns {object}
 */
export function jsonValue(value) {
  if (value === null || value === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(jsonValue) } };
  if (typeof value === 'object') {
    return { structValue: { fields: Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonValue(v)])) } };
  }
  throw new TypeError(`not a JSON value: ${typeof value}`);
}

/**
 * A google.protobuf.Value (as this client decodes it) back to a plain JSON value.
 * @param {any} value
 * @returns {unknown}
 */
export function fromJsonValue(value) {
  if (!value) return null;
  switch (value.kind) {
    case 'numberValue': return value.numberValue;
    case 'stringValue': return value.stringValue;
    case 'boolValue': return value.boolValue;
    case 'listValue': return (value.listValue.values ?? []).map(fromJsonValue);
    case 'structValue':
      return Object.fromEntries(Object.entries(value.structValue.fields ?? {}).map(([k, v]) => [k, fromJsonValue(v)]));
    default: return null;
  }
}

/** A session: the object createSession returned (anything with `name`), or its resource name. @typedef {{name: string}|string} SessionRef */

/**
 * The resource name of a session given as a Session object or as its name.
 * @param {SessionRef} session
 * @returns {string}
 */
function nameOf(session) {
  const name = typeof session === 'string' ? session : session?.name;
  if (!name) throw new TypeError('expected a session (an object with `name`) or its resource name');
  return name;
}

/**
 * A grpc-js interceptor adding `authorization: Bearer <token>` to every call's metadata.
 * @param {string} token
 * @returns {grpc.Interceptor}
 */
function bearer(token) {
  return (options, nextCall) => new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set('authorization', `Bearer ${token}`);
      next(metadata, listener);
    },
  });
}

/**
 * A connection to one simulatord daemon.
 *
 * Messages are plain objects with camelCase field names; int64 fields are numbers,
 * enums are their names (`'MATCH_STATE_UNMATCHED'`), and oneofs carry a property
 * naming the member that is set. Every failure is a {@link SimulatorError}.
 */
export class Simulator {
  /**
   * @param {string} address                 gRPC address, e.g. `127.0.0.1:7070` (the `grpc=` part of the ready line).
   * @param {object} [options]
   * @param {grpc.ChannelCredentials} [options.credentials]  Default: plaintext, as the daemon serves on loopback.
   * @param {number} [options.deadlineMs=30000]  Deadline of each unary call.
   * @param {string} [options.token]             Bearer token for a daemon started with `--auth`; default
   *   `$SIMULATORD_TOKEN`, `''` sends none. Every call carries it, watch streams and calls made on `.grpc` too.
   * @param {object} [options.channelOptions]    Passed to grpc-js (its `interceptors` run after the token's).
   */
  constructor(address, { credentials = grpc.credentials.createInsecure(), deadlineMs = 30_000, token = process.env.SIMULATORD_TOKEN ?? '', channelOptions = {} } = {}) {
    const Service = serviceConstructor();
    this.address = address;
    this.deadlineMs = deadlineMs;
    /** @type {any} */
    const options = { ...channelOptions };
    // An interceptor rather than per-call metadata, so that calls made directly on `.grpc` carry the token too.
    // Trimmed: a token read from a file or a secret often ends in a newline, which metadata refuses.
    if (token.trim()) options.interceptors = [bearer(token.trim()), ...(options.interceptors ?? [])];
    /** The underlying grpc-js client, for anything this layer does not cover. */
    this.grpc = new Service(address, credentials, options);
  }

  /** Closes the channel; open calls are cancelled. */
  close() {
    this.grpc.close();
  }

  /**
   * Calls any unary RPC of SimulatorService by name, e.g. `call('ResetSession', {name})`.
   * @param {string} method   The RPC name as in the proto (`GetSession`) or camelCase.
   * @param {object} request
   * @param {{deadlineMs?: number}} [options]
   * @returns {Promise<any>}
   */
  call(method, request, { deadlineMs = this.deadlineMs } = {}) {
    const fn = this.grpc[method];
    if (typeof fn !== 'function') return Promise.reject(new TypeError(`unknown RPC ${method}`));
    return new Promise((resolvePromise, reject) => {
      fn.call(this.grpc, request, { deadline: Date.now() + deadlineMs }, (/** @type {any} */ err, /** @type {any} */ response) => {
        if (err) reject(toSimulatorError(err));
        else resolvePromise(response);
      });
    });
  }

  /**
   * Creates a session, optionally with its first stubs.
   * @param {object} [options]
   * @param {string} [options.tenant='default']     Tenant id (`[a-z0-9-]`, created on demand).
   * @param {string} [options.sessionId]            Generated when omitted.
   * @param {object[]} [options.stubs]              Stubs (simulatord.v1.Stub) created with the session, in order.
   * @param {Record<string,string>} [options.labels]
   * @param {number} [options.ttlSeconds]           Idle time to live; the daemon's default (1 h) when omitted.
   * @param {object} [options.journalLimits]
   * @param {number} [options.unmatchedStatus]      HTTP status for unmatched requests (default 404).
   * @param {string} [options.template]             A session template loaded by the daemon.
   * @returns {Promise<object>} The Session (with `baseUrl`, `host`, `routingHeader`), plus `stubs`: the created stubs with their names.
   */
  async createSession({ tenant = 'default', sessionId = '', stubs = [], labels = {}, ttlSeconds, journalLimits, unmatchedStatus = 0, template = '' } = {}) {
    /** @type {Record<string, unknown>} */
    const session = { labels, unmatchedStatus };
    if (ttlSeconds !== undefined) session.ttl = duration(ttlSeconds * 1000);
    if (journalLimits) session.journalLimits = journalLimits;
    const response = await this.call('CreateSession', { parent: `tenants/${tenant}`, sessionId, session, stubs, template });
    return { ...response.session, stubs: response.stubs };
  }

  /**
   * Gets a session with its journal counters.
   * @param {SessionRef} session
   */
  async getSession(session) {
    return (await this.call('GetSession', { name: nameOf(session) })).session;
  }

  /**
   * Creates stubs atomically (all or none).
   * @param {SessionRef} session
   * @param {Array<object>} stubs  Each a Stub, or `{stub, stubId}` to choose the stub's id.
   * @returns {Promise<object[]>} The created stubs, with their names.
   */
  async createStubs(session, stubs) {
    const parent = nameOf(session);
    const requests = stubs.map((/** @type {any} */ entry) => ('stub' in entry ? { parent, stub: entry.stub, stubId: entry.stubId ?? '' } : { parent, stub: entry }));
    return (await this.call('BatchCreateStubs', { parent, requests })).stubs;
  }

  /**
   * Lists the recorded exchanges in sequence order, following every page.
   * @param {SessionRef} session
   * @param {{filter?: object, pageSize?: number}} [options]  `filter` is an ExchangeFilter, e.g. `{matchState: 'MATCH_STATE_UNMATCHED'}`.
   * @returns {Promise<object[]>}
   */
  async listExchanges(session, { filter = {}, pageSize = 0 } = {}) {
    const parent = nameOf(session);
    const exchanges = [];
    let pageToken = '';
    do {
      const page = await this.call('ListExchanges', { parent, filter, pageSize, pageToken });
      exchanges.push(...page.exchanges);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return exchanges;
  }

  /**
   * Waits until `count` exchanges pass the filter or `timeoutMs` passes. A timeout is
   * not an error: the answer has `satisfied: false` and `otherExchanges` showing what came instead.
   * @param {SessionRef} session
   * @param {{filter?: object, count?: number, timeoutMs?: number}} [options]
   * @returns {Promise<{satisfied: boolean, count: number, exchanges: object[], otherExchanges: object[]}>}
   */
  waitForExchanges(session, { filter = {}, count = 1, timeoutMs = 5000 } = {}) {
    // The call's deadline must outlast the server-side wait, or a timeout would
    // surface as DEADLINE_EXCEEDED instead of `satisfied: false`.
    return this.call(
      'WaitForExchanges',
      { parent: nameOf(session), filter, count, timeout: duration(timeoutMs) },
      { deadlineMs: timeoutMs + this.deadlineMs },
    );
  }

  /**
   * Watches exchanges as they are recorded: an async iterator of WatchExchangesResponse
   * events, each either `{event: 'exchange', exchange}` or `{event: 'evictedCount', evictedCount}`
   * (that many exchanges after `startSequence` were evicted before they could be sent).
   * It ends when the session is deleted or the daemon stops; leaving the loop (break,
   * return, throw) or aborting `signal` cancels the stream.
   * @param {SessionRef} session
   * @param {{filter?: object, startSequence?: number, signal?: AbortSignal}} [options]
   *   `startSequence`: 0 = only new exchanges, 1 = everything kept then live, n = resume after n-1.
   * @returns {AsyncGenerator<object>}
   */
  async *watchExchanges(session, { filter = {}, startSequence = 0, signal } = {}) {
    const call = this.grpc.WatchExchanges({ parent: nameOf(session), filter, startSequence });
    // Our own cancel() makes grpc-js emit a CANCELLED error after the iterator has
    // let go of the stream; without a listener Node would treat it as unhandled.
    call.on('error', () => {});
    const onAbort = () => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const event of call) yield event;
    } catch (/** @type {any} */ err) {
      if (signal?.aborted && err?.code === grpc.status.CANCELLED) return;
      throw toSimulatorError(err);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      call.cancel();
    }
  }

  /**
   * Checks the session's expectations: unused stubs, unmet call counts, unmatched requests.
   * @param {SessionRef} session
   * @returns {Promise<{ok: boolean, unusedStubs: object[], unmetExpectations: object[], unmatchedExchanges: object[], summary: string}>}
   */
  verify(session) {
    return this.call('VerifySession', { name: nameOf(session) });
  }

  /**
   * Deletes a session with its stubs and journal; its watchers end.
   * @param {SessionRef} session
   * @param {{allowMissing?: boolean}} [options]
   */
  async deleteSession(session, { allowMissing = false } = {}) {
    await this.call('DeleteSession', { name: nameOf(session), allowMissing });
  }
}
