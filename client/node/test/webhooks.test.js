// The daemon delivers a GitHub-signed webhook to a Node `http` receiver, which checks it as GitHub's own
// library does: @octokit/webhooks-methods verify(). A spoiled signature fails the same check.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { verify } from '@octokit/webhooks-methods';

import { Simulator, jsonValue } from '../src/index.js';
import { rejection } from './assertions.js';
import { startDaemon } from './daemon.js';

const SECRET = 'node-webhook-secret';

/** A receiver on loopback: records each request and what octokit's verify() made of its signature. */
async function startReceiver() {
  const received = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const signature = req.headers['x-hub-signature-256'];
      let verified;
      try {
        verified = await verify(SECRET, body, signature);
      } catch (err) {
        verified = `threw: ${err.message}`; // a missing signature: octokit throws
      }
      received.push({ path: req.url, headers: req.headers, body, verified });
      res.writeHead(verified === true ? 204 : 401).end();
    });
  });
  await new Promise((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return { url: `http://127.0.0.1:${port}`, received, close: () => new Promise((done) => server.close(done)) };
}

describe('webhooks the daemon delivers, verified by @octokit/webhooks-methods', () => {
  let daemon;
  let sim;
  let session;
  let receiver;

  before(async () => {
    daemon = await startDaemon();
    sim = new Simulator(daemon.grpcAddress);
    session = await sim.createSession({ tenant: 'node-webhooks' });
    receiver = await startReceiver();
  });

  after(async () => {
    await receiver?.close();
    if (session) await sim.deleteSession(session, { allowMissing: true });
    sim?.close();
    await daemon?.stop();
  });

  const payload = { action: 'opened', issue: { number: 7, title: 'Grüße ✓' } };
  const github = (path, fault) => ({
    url: `${receiver.url}${path}`,
    event: 'issues',
    bodyJson: jsonValue(payload),
    signing: { profile: 'SIGNING_PROFILE_GITHUB', secrets: [SECRET], hookId: '99' },
    ...(fault ? { fault: { signature: fault } } : {}),
  });

  test('a GitHub-signed delivery passes verify(), with GitHub headers and one delivery id', async () => {
    const answer = await sim.call('DeliverWebhooks', { parent: session.name, webhooks: [github('/good')], wait: true });
    const [delivery] = answer.deliveries;
    assert.equal(delivery.state, 'DELIVERY_STATE_DELIVERED');
    assert.equal(delivery.lastStatus, 204);
    const request = receiver.received.find((r) => r.path === '/good');
    assert.ok(request, 'the receiver got the delivery');
    assert.equal(request.verified, true);
    assert.deepEqual(JSON.parse(request.body), payload);
    assert.equal(request.headers['x-github-event'], 'issues');
    assert.equal(request.headers['x-github-delivery'], delivery.deliveryId);
    assert.equal(request.headers['x-github-hook-id'], '99');
    assert.match(request.headers['user-agent'], /^GitHub-Hookshot\//);

    const exchanges = await sim.listExchanges(session);
    const attempt = exchanges.find((e) => e.webhook?.deliveryId === delivery.deliveryId);
    assert.equal(attempt.kind, 'EXCHANGE_KIND_WEBHOOK');
    assert.equal(attempt.response.status, 204);
    assert.equal(attempt.request.path, '/good');
  });

  test('a wrong or missing signature fails verify()', async () => {
    const answer = await sim.call('DeliverWebhooks', {
      parent: session.name,
      webhooks: [github('/wrong', 'SIGNATURE_FAULT_WRONG_SIGNATURE'), github('/missing', 'SIGNATURE_FAULT_MISSING_SIGNATURE')],
      wait: true,
    });
    assert.deepEqual(answer.deliveries.map((d) => [d.state, d.lastStatus]), [
      ['DELIVERY_STATE_FAILED', 401],
      ['DELIVERY_STATE_FAILED', 401],
    ]);
    const byPath = Object.fromEntries(receiver.received.map((r) => [r.path, r]));
    assert.equal(byPath['/wrong'].verified, false);
    assert.match(String(byPath['/missing'].verified), /^threw: /);
    assert.equal(byPath['/missing'].headers['x-hub-signature-256'], undefined);
  });

  test('a stale timestamp on GitHub is refused with the field that is wrong', async () => {
    const err = await rejection(
      sim.call('DeliverWebhooks', { parent: session.name, webhooks: [github('/stale', 'SIGNATURE_FAULT_STALE_TIMESTAMP')] }),
    );
    assert.equal(err.code, 3); // INVALID_ARGUMENT
    assert.deepEqual(err.fieldViolations.map((v) => v.field), ['webhooks[0].fault.signature']);
  });
});
