#!/usr/bin/env node
// Writes tests/vectors/shopify/signatures.json (and the three bodies it signs as standalone files
// orders_paid.json, refunds_create.json, orders_cancelled.json): X-Shopify-Hmac-Sha256 cases whose
// verdicts come from Shopify's official Node library alone, never from Surety's code.
//
//   npm ci --prefix scripts/shopify-vectors          # @shopify/shopify-api pinned there (13.1.0)
//   node scripts/shopify_vectors.mjs                 # from the repository root
//
// SHOPIFY_VECTORS_NODE_MODULES=<dir containing node_modules/@shopify> overrides where the library
// is loaded from (default scripts/shopify-vectors).
//
// How a verdict is obtained: a node:http server on 127.0.0.1 receives every case as a real POST
// (body bytes and headers exactly as stored), reads the raw body and calls the library's
//   shopify.webhooks.validate({rawBody, rawRequest: req, rawResponse: res})
// with the node adapter (@shopify/shopify-api/adapters/node) and a minimal config whose
// apiSecretKey is the case's secret. The library's answer ({valid} or {valid: false, reason}) is
// recorded as `library_reason` and must agree with `expect`, or the script fails.
//
// Each case: {name, secret, body, hmac_header (null = absent), headers (the other X-Shopify-*
// headers and Content-Type), expect, library_reason, library_missing_headers?, note?, quirk?}.
// quirk = true where the verdict is a library peculiarity a verifier may deliberately not share
// (empty header counted as absent; the other X-Shopify-* headers being required). `expect` is "valid", "bad_signature",
// "missing_header" or "malformed_header". The library itself only knows missing_hmac,
// invalid_hmac, missing_body and missing_headers: it compares base64 *strings*, so a header that
// is not canonical padded standard base64 of 32 bytes is simply invalid_hmac there; such cases are
// classified "malformed_header" here (by this script, from the header's shape) and the library
// must have rejected them.
//
// Library behaviour worth knowing (13.1.0, dist/esm/lib/webhooks/validate.mjs, utils/hmac-validator.mjs):
//   - order: empty body -> missing_body; no X-Shopify-Hmac-Sha256 (or empty) -> missing_hmac;
//     HMAC mismatch -> invalid_hmac; only then the other headers: any of X-Shopify-Topic,
//     -Shop-Domain, -API-Version, -Webhook-Id missing -> missing_headers.
//   - the HMAC is HMAC-SHA256(apiSecretKey, UTF-8 of rawBody) in padded standard base64, compared
//     as a string (so unpadded or URL-safe base64 of the right MAC is rejected).
//   - if a `shopify-hmac-sha256` header (no X- prefix, the newer "events" delivery) is present the
//     library validates that one and requires the shopify-* header set instead.

import { createRequire } from 'node:module';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PINNED = '13.1.0';
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const modulesDir = process.env.SHOPIFY_VECTORS_NODE_MODULES || path.join(here, 'shopify-vectors');
const require = createRequire(path.join(modulesDir, 'package.json'));

const { shopifyApi, ApiVersion, LogSeverity } = require('@shopify/shopify-api');
require('@shopify/shopify-api/adapters/node');
const { SHOPIFY_API_LIBRARY_VERSION: version } = require(
  path.join(path.dirname(require.resolve('@shopify/shopify-api')), 'version.js'),
);
if (version !== PINNED && process.env.SHOPIFY_VECTORS_ANY_VERSION !== '1') {
  console.error(`@shopify/shopify-api ${version} installed; these vectors are pinned to ${PINNED}`);
  process.exit(1);
}

const SECRET = 'shpss_surety_test_0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a';
const SECRET_WRONG = 'shpss_surety_test_ffffffffffffffffffffffffffffffff';
const SHOP = 'surety-test.myshopify.com';
const API_VERSION = '2026-01';

// Removes whitespace outside strings without parsing, so 64-bit ids keep every digit.
function compact(text) {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i];
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (!' \t\r\n'.includes(c)) {
      out += c;
    }
  }
  return out;
}

// Realistic bodies, written pretty here and sent compact as Shopify does. Ids above 2^53 on
// purpose (order, customer, line item, refund, transaction): only a 64-bit integer parser keeps them.
const ORDER_PAID = `{
  "id": 5630812345678901234,
  "admin_graphql_api_id": "gid://shopify/Order/5630812345678901234",
  "app_id": 580111,
  "browser_ip": "203.0.113.42",
  "buyer_accepts_marketing": true,
  "cancel_reason": null,
  "cancelled_at": null,
  "cart_token": "Z2NwLWV1cm9wZS13ZXN0NDowMUhYWlNVUkVUWQ",
  "checkout_id": 36912345678901234,
  "checkout_token": "9f3c2b1a0e8d7c6b5a4f3e2d1c0b9a8f",
  "client_details": {
    "accept_language": "de-DE,de;q=0.9,en;q=0.8",
    "browser_height": 900,
    "browser_ip": "203.0.113.42",
    "browser_width": 1440,
    "session_hash": null,
    "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
  },
  "confirmation_number": "X7K2QW9PZ",
  "confirmed": true,
  "contact_email": "Zoe.Mueller@Example.com",
  "created_at": "2026-05-02T14:03:11+02:00",
  "currency": "EUR",
  "current_subtotal_price": "119.90",
  "current_total_discounts": "0.00",
  "current_total_price": "129.90",
  "current_total_tax": "20.74",
  "customer_locale": "de-DE",
  "email": "Zoe.Mueller@Example.com",
  "financial_status": "paid",
  "fulfillment_status": null,
  "landing_site": "/products/trail-runner?gclid=Cj0KCQjwSuretyTestGclid123&utm_source=google&utm_medium=cpc",
  "name": "#1042",
  "note": null,
  "note_attributes": [
    { "name": "_ga", "value": "GA1.1.1234567890.1714650000" },
    { "name": "_ga_SURETY123", "value": "GS1.1.1714651000.3.1.1714651391.0.0.0" },
    { "name": "gclid", "value": "Cj0KCQjwSuretyTestGclid123" },
    { "name": "_fbp", "value": "fb.1.1714650000123.1098765432" },
    { "name": "_fbc", "value": "fb.1.1714650100456.IwAR2SuretyTestFbclid" },
    { "name": "li_fat_id", "value": "3f1c9a7e-0b2d-4c5e-8f6a-1b2c3d4e5f60" }
  ],
  "number": 42,
  "order_number": 1042,
  "order_status_url": "https://surety-test.myshopify.com/71234567890/orders/9f3c2b1a0e8d7c6b/authenticate?key=abc",
  "payment_gateway_names": ["shopify_payments"],
  "phone": "+4915112345678",
  "presentment_currency": "EUR",
  "processed_at": "2026-05-02T14:03:10+02:00",
  "referring_site": "https://www.google.com/",
  "source_name": "web",
  "subtotal_price": "119.90",
  "tags": "",
  "tax_lines": [
    { "price": "20.74", "rate": 0.19, "title": "MwSt", "price_set": { "shop_money": { "amount": "20.74", "currency_code": "EUR" }, "presentment_money": { "amount": "20.74", "currency_code": "EUR" } } }
  ],
  "taxes_included": true,
  "test": false,
  "token": "9f3c2b1a0e8d7c6b5a4f3e2d1c0b9a8e",
  "total_discounts": "0.00",
  "total_line_items_price": "119.90",
  "total_price": "129.90",
  "total_price_set": { "shop_money": { "amount": "129.90", "currency_code": "EUR" }, "presentment_money": { "amount": "129.90", "currency_code": "EUR" } },
  "total_shipping_price_set": { "shop_money": { "amount": "10.00", "currency_code": "EUR" }, "presentment_money": { "amount": "10.00", "currency_code": "EUR" } },
  "total_tax": "20.74",
  "total_weight": 850,
  "updated_at": "2026-05-02T14:03:14+02:00",
  "user_id": null,
  "billing_address": {
    "first_name": "Zoë", "last_name": "Müller", "address1": "Hauptstraße 5", "address2": null,
    "city": "München", "zip": "80331", "province": "Bayern", "province_code": "BY",
    "country": "Germany", "country_code": "DE", "phone": "+49 151 12345678", "company": null,
    "latitude": 48.137154, "longitude": 11.576124, "name": "Zoë Müller"
  },
  "shipping_address": {
    "first_name": "Zoë", "last_name": "Müller", "address1": "Hauptstraße 5", "address2": null,
    "city": "München", "zip": "80331", "province": "Bayern", "province_code": "BY",
    "country": "Germany", "country_code": "DE", "phone": "+49 151 12345678", "company": null,
    "latitude": 48.137154, "longitude": 11.576124, "name": "Zoë Müller"
  },
  "customer": {
    "id": 7412345678901234567,
    "email": "Zoe.Mueller@Example.com",
    "accepts_marketing": true,
    "created_at": "2025-11-20T09:12:00+01:00",
    "updated_at": "2026-05-02T14:03:12+02:00",
    "first_name": "Zoë",
    "last_name": "Müller",
    "state": "enabled",
    "note": null,
    "verified_email": true,
    "multipass_identifier": null,
    "tax_exempt": false,
    "phone": "+4915112345678",
    "currency": "EUR",
    "admin_graphql_api_id": "gid://shopify/Customer/7412345678901234567",
    "default_address": {
      "id": 9123456789012345678, "customer_id": 7412345678901234567,
      "first_name": "Zoë", "last_name": "Müller", "address1": "Hauptstraße 5", "city": "München",
      "zip": "80331", "country_code": "DE", "default": true
    }
  },
  "discount_codes": [],
  "fulfillments": [],
  "line_items": [
    {
      "id": 13456789012345678,
      "admin_graphql_api_id": "gid://shopify/LineItem/13456789012345678",
      "fulfillable_quantity": 1,
      "gift_card": false,
      "grams": 700,
      "name": "Trail Runner – 42 / Blue",
      "price": "99.90",
      "price_set": { "shop_money": { "amount": "99.90", "currency_code": "EUR" }, "presentment_money": { "amount": "99.90", "currency_code": "EUR" } },
      "product_exists": true,
      "product_id": 8812345678901234567,
      "quantity": 1,
      "requires_shipping": true,
      "sku": "TR-42-BLU",
      "taxable": true,
      "title": "Trail Runner",
      "total_discount": "0.00",
      "variant_id": 4412345678901234567,
      "variant_title": "42 / Blue",
      "vendor": "Surety Test Outfitters",
      "tax_lines": [{ "price": "15.95", "rate": 0.19, "title": "MwSt" }]
    },
    {
      "id": 13456789012345679,
      "admin_graphql_api_id": "gid://shopify/LineItem/13456789012345679",
      "fulfillable_quantity": 2,
      "gift_card": false,
      "grams": 75,
      "name": "Merino Socks",
      "price": "10.00",
      "price_set": { "shop_money": { "amount": "10.00", "currency_code": "EUR" }, "presentment_money": { "amount": "10.00", "currency_code": "EUR" } },
      "product_exists": true,
      "product_id": 8812345678901234999,
      "quantity": 2,
      "requires_shipping": true,
      "sku": "SOCK-M",
      "taxable": true,
      "title": "Merino Socks",
      "total_discount": "0.00",
      "variant_id": 4412345678901234999,
      "variant_title": null,
      "vendor": "Surety Test Outfitters",
      "tax_lines": [{ "price": "3.19", "rate": 0.19, "title": "MwSt" }]
    }
  ],
  "refunds": [],
  "shipping_lines": [
    { "id": 4712345678901234, "code": "Standard", "price": "10.00", "source": "shopify", "title": "Standard" }
  ]
}`;

const REFUND_CREATE = `{
  "id": 1876543210987654321,
  "admin_graphql_api_id": "gid://shopify/Refund/1876543210987654321",
  "created_at": "2026-05-06T10:15:00+02:00",
  "note": "Socks returned",
  "order_id": 5630812345678901234,
  "processed_at": "2026-05-06T10:15:00+02:00",
  "restock": true,
  "total_duties_set": { "shop_money": { "amount": "0.00", "currency_code": "EUR" }, "presentment_money": { "amount": "0.00", "currency_code": "EUR" } },
  "user_id": 81234567890123456,
  "order_adjustments": [
    { "id": 2312345678901234, "amount": "-9.90", "amount_set": { "shop_money": { "amount": "-9.90", "currency_code": "EUR" }, "presentment_money": { "amount": "-9.90", "currency_code": "EUR" } }, "kind": "refund_discrepancy", "order_id": 5630812345678901234, "reason": "Refund discrepancy", "refund_id": 1876543210987654321, "tax_amount": "0.00" }
  ],
  "transactions": [
    {
      "id": 7001234567890123456,
      "admin_graphql_api_id": "gid://shopify/OrderTransaction/7001234567890123456",
      "amount": "29.90",
      "authorization": "re_3SuretyTestRefund0001",
      "created_at": "2026-05-06T10:15:00+02:00",
      "currency": "EUR",
      "error_code": null,
      "gateway": "shopify_payments",
      "kind": "refund",
      "message": "Transaction approved",
      "order_id": 5630812345678901234,
      "parent_id": 7001234567890123400,
      "processed_at": "2026-05-06T10:15:00+02:00",
      "source_name": "1830279",
      "status": "success",
      "test": false,
      "user_id": 81234567890123456
    }
  ],
  "refund_line_items": [
    {
      "id": 6612345678901234567,
      "line_item_id": 13456789012345679,
      "location_id": 71234567890123,
      "quantity": 2,
      "restock_type": "return",
      "subtotal": 20.0,
      "subtotal_set": { "shop_money": { "amount": "20.00", "currency_code": "EUR" }, "presentment_money": { "amount": "20.00", "currency_code": "EUR" } },
      "total_tax": 3.19,
      "total_tax_set": { "shop_money": { "amount": "3.19", "currency_code": "EUR" }, "presentment_money": { "amount": "3.19", "currency_code": "EUR" } },
      "line_item": {
        "id": 13456789012345679,
        "name": "Merino Socks",
        "price": "10.00",
        "product_id": 8812345678901234999,
        "quantity": 2,
        "sku": "SOCK-M",
        "title": "Merino Socks",
        "variant_id": 4412345678901234999
      }
    }
  ],
  "duties": [],
  "return": null
}`;

const ORDER_CANCELLED = `{
  "id": 5630812345678905678,
  "admin_graphql_api_id": "gid://shopify/Order/5630812345678905678",
  "browser_ip": "198.51.100.7",
  "buyer_accepts_marketing": false,
  "cancel_reason": "customer",
  "cancelled_at": "2026-05-03T09:30:00+02:00",
  "client_details": {
    "accept_language": "en-GB,en;q=0.9",
    "browser_height": 844,
    "browser_ip": "198.51.100.7",
    "browser_width": 390,
    "session_hash": null,
    "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
  },
  "contact_email": "sam.o'neil+shop@example.co.uk",
  "created_at": "2026-05-02T18:45:00+02:00",
  "currency": "EUR",
  "current_total_price": "0.00",
  "email": "sam.o'neil+shop@example.co.uk",
  "financial_status": "refunded",
  "fulfillment_status": null,
  "name": "#1043",
  "note_attributes": [
    { "name": "_ga", "value": "GA1.1.987654321.1714660000" },
    { "name": "gclid", "value": "EAIaIQobChMISuretyTest" },
    { "name": "_fbp", "value": "fb.1.1714660000999.555666777" }
  ],
  "order_number": 1043,
  "phone": null,
  "presentment_currency": "EUR",
  "processed_at": "2026-05-02T18:45:00+02:00",
  "source_name": "web",
  "subtotal_price": "49.00",
  "test": false,
  "total_price": "49.00",
  "total_price_set": { "shop_money": { "amount": "49.00", "currency_code": "EUR" }, "presentment_money": { "amount": "49.00", "currency_code": "EUR" } },
  "total_tax": "7.82",
  "updated_at": "2026-05-03T09:30:02+02:00",
  "customer": {
    "id": 7412345678901239999,
    "email": "sam.o'neil+shop@example.co.uk",
    "first_name": "Sam",
    "last_name": "O'Neil",
    "phone": null,
    "admin_graphql_api_id": "gid://shopify/Customer/7412345678901239999"
  },
  "line_items": [
    {
      "id": 13456789012349999,
      "name": "Rain Shell \\"Storm\\" – M",
      "price": "49.00",
      "product_id": 8812345678901230000,
      "quantity": 1,
      "sku": "RS-M",
      "title": "Rain Shell \\"Storm\\"",
      "variant_id": 4412345678901230000,
      "vendor": "Surety Test Outfitters"
    }
  ],
  "refunds": [
    { "id": 1876543210987650000, "order_id": 5630812345678905678, "created_at": "2026-05-03T09:30:00+02:00", "note": "Order canceled", "restock": true, "transactions": [], "refund_line_items": [] }
  ]
}`;

const BODIES = {
  orders_paid: { topic: 'orders/paid', pretty: ORDER_PAID, webhookId: 'b54557e4-bdd9-4b37-8a5f-bf7d70bcd043', eventId: '98880550-7158-44d4-b7cd-2c97c8a091b5' },
  refunds_create: { topic: 'refunds/create', pretty: REFUND_CREATE, webhookId: '3a6f1d2c-4e5b-4c7d-9e8f-0a1b2c3d4e5f', eventId: '5c0e9a8b-7d6c-4b5a-8f9e-1d2c3b4a5f6e' },
  orders_cancelled: { topic: 'orders/cancelled', pretty: ORDER_CANCELLED, webhookId: 'e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b', eventId: '7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2f1e' },
};

function shopHeaders(b) {
  return {
    'Content-Type': 'application/json',
    'X-Shopify-Topic': b.topic,
    'X-Shopify-Shop-Domain': SHOP,
    'X-Shopify-API-Version': API_VERSION,
    'X-Shopify-Webhook-Id': b.webhookId,
    'X-Shopify-Event-Id': b.eventId,
    'X-Shopify-Triggered-At': '2026-05-02T12:03:15.123456789Z',
  };
}

const hmac = (secret, body) => createHmac('sha256', secret).update(body, 'utf8').digest('base64');

// The script's own reading of the header's shape: canonical padded standard base64 of 32 bytes?
function wellFormed(h) {
  return /^[A-Za-z0-9+/]{43}=$/.test(h) && Buffer.from(h, 'base64').toString('base64') === h;
}

// One library instance per secret (apiSecretKey is per instance).
const instances = new Map();
function shopifyFor(secret) {
  if (!instances.has(secret)) {
    instances.set(
      secret,
      shopifyApi({
        apiKey: 'surety-test-api-key',
        apiSecretKey: secret,
        apiVersion: ApiVersion.January26,
        hostName: 'surety.test',
        isEmbeddedApp: false,
        logger: { level: LogSeverity.Error },
      }),
    );
  }
  return instances.get(secret);
}

// Each case goes through a real HTTP request; the server hands req/res to the library.
let current = null;
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    try {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const result = await shopifyFor(current.secret).webhooks.validate({ rawBody, rawRequest: req, rawResponse: res });
      current.resolve(result);
    } catch (e) {
      current.reject(e);
    }
    res.writeHead(200).end();
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;

function libraryVerdict(secret, body, hmacHeader, headers) {
  return new Promise((resolve, reject) => {
    current = { secret, resolve, reject };
    const h = { ...headers };
    if (hmacHeader !== null) h['X-Shopify-Hmac-Sha256'] = hmacHeader;
    const buf = Buffer.from(body, 'utf8');
    h['Content-Length'] = String(buf.length);
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/webhooks/shopify', headers: h }, (res) => res.resume());
    req.on('error', reject);
    req.end(buf);
  });
}

const cases = [];
async function addCase(name, secret, body, hmacHeader, headers, expect, note, quirk = false) {
  const result = await libraryVerdict(secret, body, hmacHeader, headers);
  const libraryReason = result.valid ? null : result.reason;
  const ok =
    (expect === 'valid' && result.valid) ||
    (expect === 'bad_signature' && libraryReason === 'invalid_hmac' && wellFormed(hmacHeader)) ||
    (expect === 'malformed_header' && libraryReason === 'invalid_hmac' && !wellFormed(hmacHeader)) ||
    (expect === 'missing_header' && ['missing_hmac', 'missing_headers'].includes(libraryReason));
  if (!ok) throw new Error(`${name}: expected ${expect}, the library says ${JSON.stringify(result)}`);
  const c = { name, secret, body, hmac_header: hmacHeader, headers, expect, library_reason: libraryReason };
  if (libraryReason === 'missing_headers') c.library_missing_headers = result.missingHeaders;
  if (note) c.note = note;
  if (quirk) c.quirk = true;
  cases.push(c);
}

const outDir = path.join(root, 'tests', 'vectors', 'shopify');
fs.mkdirSync(outDir, { recursive: true });

for (const [stem, b] of Object.entries(BODIES)) {
  b.body = compact(b.pretty);
  fs.writeFileSync(path.join(outDir, `${stem}.json`), b.body);
  b.headers = shopHeaders(b);
  await addCase(`valid_${stem}`, SECRET, b.body, hmac(SECRET, b.body), b.headers, 'valid');
}

const p = BODIES.orders_paid;
const good = hmac(SECRET, p.body);

await addCase('valid_pretty_body', SECRET, p.pretty, hmac(SECRET, p.pretty), p.headers, 'valid',
  'the same order pretty-printed and signed as such: any bytes are fine when signed');
const tampered = p.body.replace('"total_price":"129.90"', '"total_price":"12.99"');
if (tampered === p.body) throw new Error('tamper failed');
await addCase('tampered_body', SECRET, tampered, good, p.headers, 'bad_signature');
await addCase('wrong_secret', SECRET_WRONG, p.body, good, p.headers, 'bad_signature');
await addCase('reserialised_json', SECRET, p.pretty, good, p.headers, 'bad_signature',
  'same JSON value with whitespace: the HMAC covers the raw bytes');
const jsRoundTrip = JSON.stringify(JSON.parse(p.body));
await addCase('js_number_roundtrip', SECRET, jsRoundTrip, good, p.headers, 'bad_signature',
  'JSON.parse/stringify turned 5630812345678901234 into 5630812345678901000: ids above 2^53 must stay 64-bit integers');
const other = BODIES.refunds_create;
await addCase('signature_of_other_body', SECRET, p.body, hmac(SECRET, other.body), p.headers, 'bad_signature');

await addCase('missing_header', SECRET, p.body, null, p.headers, 'missing_header');
await addCase('empty_header', SECRET, p.body, '', p.headers, 'missing_header',
  'the library treats an empty value like an absent header', true);
await addCase('malformed_base64', SECRET, p.body, 'not base64 at all!!', p.headers, 'malformed_header');
await addCase('hmac_as_hex', SECRET, p.body, createHmac('sha256', SECRET).update(p.body, 'utf8').digest('hex'), p.headers, 'malformed_header',
  'the right MAC, hex-encoded: Shopify sends base64');
await addCase('hmac_unpadded_base64', SECRET, p.body, good.replace(/=+$/, ''), p.headers, 'malformed_header',
  'the right MAC without "=" padding: the library compares base64 strings and rejects it');
await addCase('hmac_truncated', SECRET, p.body, good.slice(0, 20), p.headers, 'malformed_header');
// URL-safe alphabet of the right MAC: only different when the MAC has a + or /; pick a body where it does.
{
  let body = p.body;
  let h = good;
  for (let i = 0; !/[+/]/.test(h); i++) {
    body = p.body.replace('"note":null', `"note":"gift ${i}"`);
    h = hmac(SECRET, body);
  }
  const urlSafe = h.replace(/\+/g, '-').replace(/\//g, '_');
  await addCase('hmac_urlsafe_base64', SECRET, body, urlSafe, p.headers, 'malformed_header',
    'the right MAC in the URL-safe base64 alphabet: rejected');
}
{
  const { 'X-Shopify-Topic': _t, ...noTopic } = p.headers;
  await addCase('missing_topic_header', SECRET, p.body, good, noTopic, 'missing_header',
    'HMAC is right but X-Shopify-Topic is absent: the library fails with missing_headers (checked after the HMAC)', true);
}

server.close();
fs.writeFileSync(path.join(outDir, 'signatures.json'), JSON.stringify(cases, null, 1) + '\n');
console.log(`wrote ${cases.length} cases to tests/vectors/shopify/signatures.json (@shopify/shopify-api ${version})`);
