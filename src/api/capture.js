/*! Surety capture.js: hands GA4's client and session ids, with consent, to Surety before the
 * payment, so the server-side conversion joins the browser's session. No dependencies.
 *
 *   surety.capture({
 *     key: "pk_…",                          // a capture key ([auth] capture_keys): public
 *     measurementId: "G-XXXXXXX",           // the GA4 web stream gtag was configured with
 *     subject: {type: "order", id: "1042"}, // the order or lead the payment will be about
 *     consent: {analytics_storage: "granted", ad_user_data: "granted", ad_personalization: "denied"},
 *     endpoint: "https://surety.example"    // optional: defaults to where this script came from
 *   }).then(function (result) { … });       // {sent: true, status: 202} or {sent: false, reason}
 *
 * Consent is the page's to state, in Consent Mode v2 names: the value it passes to
 * gtag('consent', 'update', …). gtag offers no documented way to read the consent state back.
 * Nothing is posted unless analytics_storage is "granted", or when gtag is absent, or when gtag
 * gives no client id within `timeoutMs` (default 2000).
 */
(function (w) {
  "use strict";
  var script = w.document && w.document.currentScript;
  var origin = script && script.src ? new URL(script.src).origin : "";

  function ask(id, field, timeoutMs) {
    return new Promise(function (resolve) {
      var done = false;
      var timer = setTimeout(function () { finish(undefined); }, timeoutMs);
      function finish(value) {
        if (done) { return; }
        done = true;
        clearTimeout(timer);
        resolve(typeof value === "string" || typeof value === "number" ? String(value) : undefined);
      }
      try {
        w.gtag("get", id, field, finish);
      } catch (e) {
        finish(undefined);
      }
    });
  }

  function state(v) {
    return v === "granted" || v === "denied" ? v : undefined;
  }

  function capture(o) {
    o = o || {};
    var consent = o.consent || {};
    if (consent.analytics_storage !== "granted") {
      return Promise.resolve({sent: false, reason: "analytics_storage not granted"});
    }
    if (typeof w.gtag !== "function") {
      return Promise.resolve({sent: false, reason: "gtag absent"});
    }
    if (!o.subject || !o.subject.type || !o.subject.id || !o.measurementId) {
      return Promise.resolve({sent: false, reason: "subject and measurementId are required"});
    }
    var timeoutMs = o.timeoutMs || 2000;
    return Promise.all([
      ask(o.measurementId, "client_id", timeoutMs),
      ask(o.measurementId, "session_id", timeoutMs)
    ]).then(function (ids) {
      if (!ids[0]) {
        return {sent: false, reason: "gtag gave no client_id"};
      }
      var identity = {client_id: ids[0]};
      if (ids[1]) { identity.session_id = ids[1]; }
      var body = {
        subject: {type: String(o.subject.type), id: String(o.subject.id)},
        identity: identity,
        consent: {analytics: "granted"}
      };
      if (state(consent.ad_user_data)) { body.consent.ad_user_data = consent.ad_user_data; }
      if (state(consent.ad_personalization)) { body.consent.ad_personalization = consent.ad_personalization; }
      var headers = {"Content-Type": "application/json"};
      if (o.key) { headers.Authorization = "Bearer " + o.key; }
      return w.fetch((o.endpoint || origin) + "/v1/identities", {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        keepalive: true,
        headers: headers,
        body: JSON.stringify(body)
      }).then(function (r) {
        return {sent: r.ok, status: r.status};
      }, function (e) {
        return {sent: false, reason: String(e)};
      });
    });
  }

  w.surety = w.surety || {};
  w.surety.capture = capture;
})(window);
