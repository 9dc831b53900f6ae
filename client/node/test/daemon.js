// Starts a real simulatord daemon for the tests (ports chosen by the OS) and stops it with SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const READY = /^simulatord ready http=(\S+) grpc=(\S+)\s*$/;

/**
 * The daemon executable: $SIMULATORD_BIN, else `simulatord` on PATH, else the repository's venv.
 * @returns {string}
 */
export function simulatordBin() {
  if (process.env.SIMULATORD_BIN) return process.env.SIMULATORD_BIN;
  const which = spawnSync('sh', ['-c', 'command -v simulatord'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  const venv = resolve(REPO, '.venv/bin/simulatord');
  if (existsSync(venv)) return venv;
  throw new Error('simulatord not found: set SIMULATORD_BIN, put it on PATH, or install the repo venv (.venv)');
}

/**
 * Spawns `simulatord serve` on loopback with OS-chosen ports and resolves once it printed its ready line.
 * @param {{timeoutMs?: number, args?: string[]}} [options]
 * @returns {Promise<{httpUrl: string, grpcAddress: string, pid: number|undefined, stderr: () => string, stop: (graceMs?: number) => Promise<{code: number|null, signal: string|null}>}>}
 */
export function startDaemon({ timeoutMs = 30_000, args = [] } = {}) {
  const bin = simulatordBin();
  const child = spawn(bin, ['serve', '--host', '127.0.0.1', '--http-port', '0', '--grpc-port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Stderr is kept (bounded) so a failing test can show what the daemon logged.
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-64_000);
  });
  const exited = new Promise((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));

  const stop = async (graceMs = 10_000) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    // A daemon that ignores SIGTERM must not hang the test run; SIGKILL after a grace period.
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const result = await exited;
    clearTimeout(timer);
    return result;
  };

  return new Promise((resolveReady, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`simulatord not ready after ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${err.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`simulatord exited before ready (code ${code}, signal ${signal}); stderr:\n${stderr}`));
    });
    lines.on('line', (line) => {
      const match = READY.exec(line);
      if (!match) return;
      clearTimeout(timer);
      // readline stays attached and keeps draining stdout, so the daemon never blocks on a full pipe.
      resolveReady({ httpUrl: match[1], grpcAddress: match[2], stderr: () => stderr, stop, pid: child.pid });
    });
  });
}
