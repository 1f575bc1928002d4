/* Keeper payment form: screens, countdown, card input, confirmation and live status.
 *
 * The server renders every screen (in the payer's language) and the order's state as
 * data-attributes of <main id="pay">; this script only switches screens. Status arrives by
 * Server-Sent Events (data-events-url) and, when those are unavailable, by polling
 * data-status-url. The payer's card number goes to data-confirm-url and nowhere else; it is
 * never logged or stored.
 */
(function () {
  "use strict";

  var root = document.getElementById("pay");
  if (!root || !root.dataset.uid) {
    return; // the not-found page has nothing to drive
  }
  var data = root.dataset;

  var POLL_MS = 2000;
  var OPEN_TIMEOUT_MS = 5000;
  var MAX_STREAM_ERRORS = 3;
  var RETRY_UNCERTAIN_MS = 10000;
  var RANK = {
    pending: 0, "new": 1, processing: 2,
    approved: 3, rejected: 3, failed: 3, expired: 3, declined: 3, cancelled: 3
  };
  var VERDICT = {
    approved: 1, rejected: 1, failed: 1, expired: 1, declined: 1, cancelled: 1
  };

  var state = {
    status: data.status,
    version: Number(data.version) || 0,
    direction: data.direction,
    expiresMs: Number(data.expiresMs)
  };
  var skewMs = Number(data.serverNowMs) - Date.now();
  var confirmedKey = "keeper:confirmed:" + data.uid;
  var confirming = false;
  var stream = null;
  var pollTimer = null;
  var sections = Array.prototype.slice.call(root.querySelectorAll("section[data-for]"));

  function serverNow() { return Date.now() + skewMs; }
  function terminal() { return VERDICT.hasOwnProperty(state.status); }
  function deadlinePassed() { return serverNow() >= state.expiresMs; }

  function remembered() {
    try { return window.sessionStorage.getItem(confirmedKey) === "1"; } catch (e) { return false; }
  }
  function remember() {
    try { window.sessionStorage.setItem(confirmedKey, "1"); } catch (e) { /* private mode */ }
  }

  function screenFor() {
    var s = state.status;
    if (s === "pending") { return "pending"; }
    if (s === "new") {
      if (deadlinePassed()) { return "expired"; }
      if (confirming || remembered()) { return "waiting"; }
      return state.direction === "deposit" ? "deposit-new" : "withdrawal-new";
    }
    if (s === "processing") { return "waiting"; }
    return s;
  }

  function show(screen, how) {
    if (data.screen === screen) { return; }
    sections.forEach(function (section) { section.hidden = section.dataset.for !== screen; });
    data.screen = screen;
    data.via = how;
    // When the payer could first see it (epoch ms): the latency benchmark reads this.
    data.shownAt = String(performance.timeOrigin + performance.now());
    var heading = document.getElementById("h-" + screen);
    if (heading) { heading.focus({ preventScroll: true }); }
    if (VERDICT.hasOwnProperty(screen)) { stopLive(); }
    showDispute();
    tick();
  }

  function render(how) { show(screenFor(), how); }

  /* A status from the push, the poll or the confirmation answer. The order only moves
   * forward: an older version, or a lower step from a lagging read, is ignored. */
  function apply(update, how) {
    if (!update || !RANK.hasOwnProperty(update.status) || terminal()) { return; }
    var version = typeof update.version === "number" ? update.version : null;
    if (version !== null && version <= state.version) { return; }
    if (RANK[update.status] < RANK[state.status]) { return; }
    if (version !== null) { state.version = version; }
    if (update.payer_card_masked) { showPayout(update.payer_card_masked); }
    if (update.status === state.status) { return; }
    var wasPending = state.status === "pending";
    state.status = update.status;
    data.status = update.status;
    if (wasPending && update.status === "new") {
      window.location.reload(); // the card to pay to is rendered by the server
      return;
    }
    render(how);
  }

  function showPayout(masked) {
    var shown = masked.replace(/\*/g, "\u2022").replace(/(.{4})(?=.)/g, "$1 ");
    document.getElementById("payout-card").textContent = shown;
    document.getElementById("payout").hidden = false;
  }

  /* --- countdown ----------------------------------------------------------------- */

  function two(n) { return n < 10 ? "0" + n : String(n); }

  function clock(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    return (h ? h + ":" + two(m) : String(m)) + ":" + two(s % 60);
  }

  function tick() {
    var left = state.expiresMs - serverNow();
    var text = clock(left);
    root.querySelectorAll(".countdown").forEach(function (el) {
      if (el.textContent !== text) { el.textContent = text; }
      el.classList.toggle("low", left < 60000);
    });
    if (left <= 0) {
      if (data.screen === "deposit-new" || data.screen === "withdrawal-new") {
        setBusy(true);
        render("clock"); // nothing can be confirmed any more; the push will confirm it
      }
      var waiting = document.getElementById("screen-waiting");
      waiting.querySelector(".timer").hidden = true;
      waiting.querySelector(".overdue").hidden = false;
    }
  }

  /* --- live status: Server-Sent Events, polling as the fallback ---------------------- */

  function setConn(text) {
    var el = document.getElementById("conn");
    el.textContent = text;
    el.hidden = !text;
  }

  function startLive() {
    if (terminal()) { return; }
    if (typeof window.EventSource !== "function") { startPolling(); return; }
    var opened = false;
    var errors = 0;
    try {
      stream = new EventSource(data.eventsUrl);
    } catch (e) {
      startPolling();
      return;
    }
    data.live = "push";
    stream.addEventListener("status", function (event) {
      var update = null;
      try { update = JSON.parse(event.data); } catch (e) { return; }
      apply(update, "push");
    });
    stream.onopen = function () {
      opened = true;
      data.stream = "open";
      errors = 0;
      setConn("");
    };
    stream.onerror = function () {
      errors += 1;
      if (!stream) { return; }
      // Never opened (refused, blocked) or keeps failing: poll rather than wait on it.
      if (!opened || stream.readyState === EventSource.CLOSED || errors >= MAX_STREAM_ERRORS) {
        stream.close();
        stream = null;
        startPolling();
      }
    };
    window.setTimeout(function () {
      if (stream && !opened) { // something in between buffers the stream: poll instead
        stream.close();
        stream = null;
        startPolling();
      }
    }, OPEN_TIMEOUT_MS);
  }

  function startPolling() {
    if (pollTimer !== null || terminal()) { return; }
    data.live = "poll";
    poll();
  }

  function poll() {
    pollTimer = null;
    refresh("poll").then(function () {
      if (!terminal() && data.live === "poll") { pollTimer = window.setTimeout(poll, POLL_MS); }
    });
  }

  function refresh(how) {
    return window.fetch(data.statusUrl, { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        setConn("");
        return response.ok ? response.json() : null;
      })
      .then(function (update) { apply(update, how); })
      .catch(function () { setConn(data.msgNetwork); });
  }

  function stopLive() {
    if (stream) { stream.close(); stream = null; }
    if (pollTimer !== null) { window.clearTimeout(pollTimer); pollTimer = null; }
    data.live = "done";
  }

  /* --- confirmation ---------------------------------------------------------------- */

  function setBusy(busy) {
    root.querySelectorAll(".confirm").forEach(function (button) {
      button.disabled = busy || (button.id === "ok" && !cardDigitsValid());
    });
  }

  function showError(section, text) {
    var el = section.querySelector(".error");
    el.textContent = text;
    el.hidden = !text;
  }

  function confirm(body, section) {
    if (confirming || state.status !== "new" || deadlinePassed()) { return; }
    confirming = true; // before anything else: a second click finds it set
    setBusy(true);
    showError(section, "");
    window.fetch(data.confirmUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "omit"
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (json) {
        return { status: response.status, body: json };
      });
    }).then(function (answer) {
      if (answer.status === 200) {
        remember();
        render("confirm");
        apply(answer.body, "confirm");
      } else if (answer.status === 422) {
        confirming = false;
        setBusy(false);
        var card = document.getElementById("card-input");
        showError(section, body.card_number ? card.dataset.invalid : data.msgGeneric);
      } else if (answer.status === 404 || answer.status === 409) {
        refresh("confirm"); // the order moved on (expired, cancelled): show where it is
      } else {
        uncertain(section);
      }
    }).catch(function () { uncertain(section); });
  }

  /* No answer: the confirmation may still be applied. Watch the status; let the payer
   * try again (the server takes a repeated confirmation as the same one) only later. */
  function uncertain(section) {
    showError(section, data.msgGeneric);
    startPolling();
    window.setTimeout(function () {
      if (state.status === "new" && !deadlinePassed()) {
        confirming = false;
        setBusy(false);
        render("retry");
      }
    }, RETRY_UNCERTAIN_MS);
  }

  /* --- deposit: copy the card number ---------------------------------------------- */

  function setupCopy() {
    var button = document.getElementById("copy");
    var number = document.getElementById("card-number");
    var status = document.getElementById("copy-status");
    if (!button || !number) { return; }
    function done(ok) {
      status.textContent = ok ? button.dataset.copied : button.dataset.failed;
      button.classList.toggle("done", ok);
      if (!ok) {
        var range = document.createRange();
        range.selectNodeContents(number);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
    }
    function fallback(text) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      done(ok);
    }
    button.addEventListener("click", function () {
      var text = number.dataset.digits;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { done(true); }, function () {
          fallback(text);
        });
      } else {
        fallback(text);
      }
    });
  }

  /* --- withdrawal: the payer's card number ------------------------------------------ */

  function luhn(digits) {
    var sum = 0;
    for (var i = 0; i < digits.length; i += 1) {
      var d = digits.charCodeAt(digits.length - 1 - i) - 48;
      if (i % 2 === 1) { d = d * 2 > 9 ? d * 2 - 9 : d * 2; }
      sum += d;
    }
    return sum % 10 === 0;
  }

  function cardDigits() {
    var input = document.getElementById("card-input");
    return input ? input.value.replace(/\D/g, "") : "";
  }

  function cardDigitsValid() {
    var digits = cardDigits();
    return digits.length >= 13 && digits.length <= 19 && luhn(digits);
  }

  function setupCardInput() {
    var form = document.getElementById("card-form");
    var input = document.getElementById("card-input");
    var hint = document.getElementById("card-hint");
    if (!form || !input) { return; }

    function validate(final) {
      var digits = cardDigits();
      var valid = cardDigitsValid();
      var problem = "";
      if (digits.length && !valid) {
        if (digits.length >= 16 && !luhn(digits)) {
          problem = input.dataset.invalid;
        } else if (final) {
          problem = digits.length < 13 ? input.dataset.incomplete : input.dataset.invalid;
        }
      }
      hint.textContent = valid ? input.dataset.ok : problem;
      hint.classList.toggle("bad", !!problem);
      hint.classList.toggle("good", valid);
      input.setAttribute("aria-invalid", problem ? "true" : "false");
      setBusy(confirming);
    }

    input.addEventListener("input", function () {
      var caret = input.selectionStart === null ? input.value.length : input.selectionStart;
      var before = input.value.slice(0, caret).replace(/\D/g, "").length;
      var digits = input.value.replace(/\D/g, "").slice(0, 19);
      var grouped = digits.replace(/(\d{4})(?=\d)/g, "$1 ");
      if (grouped !== input.value) {
        input.value = grouped;
        var kept = Math.min(before, digits.length); // digit k sits after floor((k-1)/4) spaces
        var position = kept ? kept + Math.floor((kept - 1) / 4) : 0;
        input.setSelectionRange(position, position);
      }
      validate(false);
    });
    input.addEventListener("blur", function () { validate(true); });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      validate(true);
      if (cardDigitsValid()) {
        confirm({ card_number: cardDigits() }, document.getElementById("screen-withdrawal-new"));
      }
    });
    validate(false);
  }

  function setupDeposit() {
    var paid = document.getElementById("paid");
    if (!paid) { return; }
    paid.addEventListener("click", function () {
      confirm({}, document.getElementById("screen-deposit-new"));
    });
  }

  /* --- dispute: "I paid" for an expired or rejected deposit --------------------------- */

  var MAX_RECEIPT_BYTES = 5 * 1024 * 1024;
  var dispute = document.getElementById("dispute");

  function showDispute() {
    if (!dispute) { return; }
    var offered = state.direction === "deposit" &&
      (data.screen === "expired" || data.screen === "rejected");
    dispute.hidden = !offered;
  }

  function disputeState(name, reason) {
    dispute.dataset.state = name;
    dispute.querySelectorAll("[data-dispute]").forEach(function (part) {
      part.hidden = part.dataset.dispute !== name;
    });
    if (reason) { document.getElementById("dispute-reason").textContent = reason; }
  }

  function setupDispute() {
    var form = document.getElementById("dispute-form");
    if (!dispute || !form) { return; }
    var file = document.getElementById("receipt");
    var send = document.getElementById("dispute-send");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var chosen = file.files && file.files[0];
      if (!chosen) { showError(form, dispute.dataset.noFile); return; }
      if (chosen.size > MAX_RECEIPT_BYTES) { showError(form, dispute.dataset.tooLarge); return; }
      showError(form, "");
      send.disabled = true;
      window.fetch(dispute.dataset.url, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        cache: "no-store",
        credentials: "omit"
      }).then(function (response) {
        return response.json().catch(function () { return null; }).then(function (json) {
          return { status: response.status, body: json };
        });
      }).then(function (answer) {
        var code = answer.body && answer.body.error ? answer.body.error.code : "";
        if (answer.status === 201) {
          disputeState(answer.body.status);
        } else if (code === "dispute_exists") {
          window.location.reload(); // someone opened it already: show its state
        } else {
          send.disabled = false;
          showError(form, code === "receipt_too_large" ? dispute.dataset.tooLarge :
            code === "receipt_type" ? dispute.dataset.badType : data.msgGeneric);
        }
      }).catch(function () {
        send.disabled = false;
        showError(form, data.msgNetwork);
      });
    });
  }

  /* --- start ------------------------------------------------------------------------ */

  setupCopy();
  setupCardInput();
  setupDeposit();
  setupDispute();
  if (state.status === "new" && remembered()) { confirming = true; setBusy(true); }
  render("page");
  data.shownAt = String(performance.timeOrigin + performance.now());
  tick();
  window.setInterval(tick, 1000);
  startLive();
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { window.location.reload(); } // back from the cache: state is stale
  });
}());
