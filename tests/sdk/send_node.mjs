#!/usr/bin/env node
// Sends a small e-commerce story to a Segment-compatible endpoint with a real Node SDK.
//
//   node send_node.mjs <segment|rudder> <base_url> <write_key> <run_id>
//
// segment = @segment/analytics-node, rudder = @rudderstack/rudder-sdk-node (versions pinned in
// package.json / package-lock.json beside this file). Both POST to <base_url>/v1/batch.
//
// Where the SDKs are loaded from: $SURETY_SDK_DIR/node/node_modules when SURETY_SDK_DIR is set
// (scripts/install_sdks.sh DIR installs them there), else node_modules beside this file.
//
// Sends, in this order: identify (userId u-<run_id>, traits email Buyer.<run_id>@Example.com and
// phone), track "Order Completed" (order_id o-<run_id>, total/revenue 129.90 EUR, products,
// context ip/userAgent/traits.email, timestamp two hours ago), track "Order Refunded"
// (order_id o-<run_id>, total 29.90), each with an explicit messageId (js-<sdk>-<run_id>-<n>),
// then flushes and closes the client. Prints one JSON object on stdout:
//   {"sdk", "sdk_version", "user_id", "order_id", "order_completed_timestamp",
//    "message_ids": {"identify", "order_completed", "order_refunded"}, "errors": [...]}
// and exits 0 only if the SDK reported no error (no per-event callback error, no 'error' event /
// errorHandler call).
//
// Environment (optional):
//   SURETY_SDK_RETRIES  SDK retries (default 3; segment's own default is 10, rudder's 3)
//   SURETY_SDK_GZIP     1/0 for rudder's gzip option (default on; segment-node never gzips)
//   SURETY_SDK_TIMEOUT  per-request timeout in ms (default 15000)

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const usage = 'usage: node send_node.mjs <segment|rudder> <base_url> <write_key> <run_id>';
const [, , sdk, baseUrl, writeKey, runId] = process.argv;
if (process.argv.length !== 6 || !['segment', 'rudder'].includes(sdk)) {
  console.error(usage);
  process.exit(2);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const roots = [];
if (process.env.SURETY_SDK_DIR) roots.push(path.join(path.resolve(process.env.SURETY_SDK_DIR), 'node'));
roots.push(here);
const pkgName = sdk === 'segment' ? '@segment/analytics-node' : '@rudderstack/rudder-sdk-node';
let mod;
let version;
for (const r of roots) {
  const pkgJson = path.join(r, 'node_modules', pkgName, 'package.json');
  if (!fs.existsSync(pkgJson)) continue;
  const require = createRequire(path.join(r, 'package.json'));
  mod = require(pkgName);
  version = JSON.parse(fs.readFileSync(pkgJson, 'utf8')).version;
  break;
}
if (!mod) {
  console.error(`${pkgName} not found under ${roots.join(', ')} (run scripts/install_sdks.sh DIR and set SURETY_SDK_DIR=DIR)`);
  process.exit(2);
}

const retries = Number(process.env.SURETY_SDK_RETRIES ?? '3');
const timeoutMs = Number(process.env.SURETY_SDK_TIMEOUT ?? '15000');
const errors = [];

const userId = `u-${runId}`;
const orderId = `o-${runId}`;
const email = `Buyer.${runId}@Example.com`;
const ids = {
  identify: `js-${sdk}-${runId}-1`,
  order_completed: `js-${sdk}-${runId}-2`,
  order_refunded: `js-${sdk}-${runId}-3`,
};
const completedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 2 * 3600 * 1000);

const identify = {
  userId,
  traits: { email, phone: '+49 151 2345 6789' },
  messageId: ids.identify,
};
const completed = {
  userId,
  event: 'Order Completed',
  properties: {
    order_id: orderId,
    total: 129.9,
    revenue: 129.9,
    currency: 'EUR',
    products: [
      { product_id: 'sku-trail-42', name: 'Trail Runner', price: 99.9, quantity: 1 },
      { product_id: 'sku-sock-m', name: 'Merino Socks', price: 15.0, quantity: 2 },
    ],
  },
  context: {
    ip: '203.0.113.9',
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0',
    traits: { email },
  },
  timestamp: completedAt,
  messageId: ids.order_completed,
};
const refunded = {
  userId,
  event: 'Order Refunded',
  properties: { order_id: orderId, total: 29.9, currency: 'EUR' },
  messageId: ids.order_refunded,
};

const cb = (what) => (err) => {
  if (err) errors.push({ event: what, error: String(err?.message ?? err) });
};

if (sdk === 'segment') {
  const { Analytics } = mod;
  const analytics = new Analytics({
    writeKey,
    host: baseUrl,
    maxRetries: retries,
    httpRequestTimeout: timeoutMs,
    flushAt: 15,
    flushInterval: 10000,
  });
  analytics.on('error', (e) => errors.push({ event: 'error', error: String(e?.reason?.message ?? e?.reason ?? e?.code) }));
  analytics.identify(identify, cb('identify'));
  analytics.track(completed, cb('order_completed'));
  analytics.track(refunded, cb('order_refunded'));
  await analytics.closeAndFlush({ timeout: Math.max(60000, timeoutMs * (retries + 2)) });
} else {
  const Analytics = mod;
  const opts = {
    dataPlaneUrl: baseUrl,
    retryCount: retries,
    timeout: timeoutMs,
    flushAt: 20,
    flushInterval: 10000,
    logLevel: 'error',
    errorHandler: (e) => errors.push({ event: 'errorHandler', error: String(e?.message ?? e) }),
  };
  if (process.env.SURETY_SDK_GZIP !== undefined) opts.gzip = process.env.SURETY_SDK_GZIP === '1';
  const analytics = new Analytics(writeKey, opts);
  analytics.identify(identify, cb('identify'));
  analytics.track(completed, cb('order_completed'));
  analytics.track(refunded, cb('order_refunded'));
  // flush() sends what is queued and resolves after the request (and any earlier pending one)
  // has settled; a second flush() waits for the first when the queue is already empty.
  try {
    await analytics.flush();
    await analytics.flush();
  } catch (e) {
    errors.push({ event: 'flush', error: String(e?.message ?? e) });
  }
  // Callbacks run on setImmediate after the request settles.
  await new Promise((r) => setImmediate(r));
}

process.stdout.write(
  JSON.stringify({
    sdk: pkgName,
    sdk_version: version,
    user_id: userId,
    order_id: orderId,
    order_completed_timestamp: completedAt.toISOString(),
    message_ids: ids,
    errors,
  }) + '\n',
);
process.exit(errors.length ? 1 : 0);
