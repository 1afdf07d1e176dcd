// resque dashboard: confirmations and the live view. No library; data from the server is
// only ever written with textContent or as attribute values, never parsed as HTML.
"use strict";
(function () {
  var body = document.body;
  document.documentElement.classList.add("js");

  // Destructive buttons ask first (the CSP forbids inline onclick handlers).
  document.addEventListener("submit", function (event) {
    var button = event.submitter || event.target.querySelector("[data-confirm]");
    var message = button && button.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // After an action the URL carries ?done=...; drop it so a reload does not repeat the note.
  if (/[?&]done=/.test(window.location.search) && window.history.replaceState) {
    var params = new URLSearchParams(window.location.search);
    params.delete("done");
    params.delete("n");
    var query = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
  }

  var url = body.getAttribute("data-live-url");
  var interval = Math.max(200, 1000 * parseFloat(body.getAttribute("data-poll") || "3"));
  var toggle = document.getElementById("live-toggle");
  var label = document.getElementById("live-label");
  var stamp = document.getElementById("live-time");
  var on = window.localStorage.getItem("resque-live") !== "off";
  var timer = null;
  var polls = 0;

  function format(n) { return typeof n === "number" ? n.toLocaleString("en-US") : String(n); }

  function show() {
    toggle.classList.toggle("on", on);
    label.textContent = on ? "Live" : "Paused";
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
  }

  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  function rebuildWorking(tbody, rows, total) {
    var limit = parseInt(tbody.getAttribute("data-limit") || "10", 10);
    var workerUrl = tbody.getAttribute("data-worker-url");
    var queueUrl = tbody.getAttribute("data-queue-url");
    var fresh = document.createDocumentFragment();
    rows.slice(0, limit).forEach(function (row) {
      var tr = document.createElement("tr");
      var where = document.createElement("a");
      where.className = "mono";
      where.href = workerUrl + "/" + row.path;
      where.textContent = row.where;
      var queue = document.createElement("a");
      queue.className = "qtag";
      queue.href = queueUrl + "/" + row.queue_path;
      queue.textContent = row.queue;
      var job = document.createElement("code");
      job.className = "cls";
      job.textContent = row["class"];
      var started = document.createElement("span");
      started.textContent = row.run_at;
      [where, queue, job, started].forEach(function (node) {
        var td = document.createElement("td");
        td.appendChild(node);
        tr.appendChild(td);
      });
      fresh.appendChild(tr);
    });
    if (!rows.length) {
      var tr = document.createElement("tr");
      tr.className = "empty";
      var td = document.createElement("td");
      td.colSpan = 4;
      td.textContent = "Nothing is happening right now.";
      tr.appendChild(td);
      fresh.appendChild(tr);
    }
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    tbody.appendChild(fresh);
    document.querySelectorAll("[data-live-working-count]").forEach(function (el) {
      setText(el, format(total));
    });
  }

  function apply(data) {
    document.querySelectorAll("[data-live-count]").forEach(function (el) {
      var value = data.counts[el.getAttribute("data-live-count")];
      if (value !== undefined) setText(el, format(value));
    });
    document.querySelectorAll("[data-queue-size]").forEach(function (el) {
      var value = data.queues[el.getAttribute("data-queue")];
      if (value !== undefined) setText(el, format(value));
    });
    document.querySelectorAll("tbody[data-live-working]").forEach(function (tbody) {
      rebuildWorking(tbody, data.working, data.working_total);
    });
    polls += 1;
    if (polls % Math.max(1, Math.round(10000 / interval)) === 0) {
      document.querySelectorAll("img[data-live-chart]").forEach(function (img) {
        var src = new URL(img.getAttribute("src"), window.location.href);
        src.searchParams.set("t", String(Date.now()));
        img.setAttribute("src", src.pathname + src.search);
      });
    }
    setText(stamp, "updated " + data.time);
  }

  function poll() {
    timer = null;
    if (!on) return;
    if (document.hidden) { timer = window.setTimeout(poll, interval); return; }
    var query = new URLSearchParams();
    var seen = {};
    document.querySelectorAll("[data-queue-size]").forEach(function (el) {
      var name = el.getAttribute("data-queue");
      if (!seen[name]) { seen[name] = true; query.append("q", name); }
    });
    fetch(url + "?" + query.toString(), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) { toggle.classList.remove("error"); apply(data); })
      .catch(function () { toggle.classList.add("error"); setText(stamp, "cannot refresh"); })
      .then(function () { if (on && timer === null) timer = window.setTimeout(poll, interval); });
  }

  if (toggle && url) {
    toggle.addEventListener("click", function () {
      on = !on;
      window.localStorage.setItem("resque-live", on ? "on" : "off");
      show();
      if (on && timer === null) poll();
    });
    show();
    if (on) timer = window.setTimeout(poll, interval);
  }
})();
