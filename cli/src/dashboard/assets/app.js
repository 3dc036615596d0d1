// The Nexus dashboard page: renders each screen the server pushes (server-sent events), opens an order's
// timeline on click, and sends the controls' actions with the token in a header. Everything from the stack
// is put on the page as text (textContent), never as HTML.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const SERVICES = ["order", "inventory", "payment", "shipping", "notification"];
let chart = null;
let chartSeriesKey = "";
let openOrder = null;
let openOrderUpdatedAt = null;
// The order whose detail is being fetched: a screen arriving meanwhile does not fetch it again.
let detailLoading = null;

function $(selector) {
  return document.querySelector(selector);
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(child == null ? "" : String(child)));
  }
  return node;
}

function fill(selector, rows) {
  $(selector + " tbody").replaceChildren(...rows);
}

function cells(values) {
  return values.map((v) => (v instanceof Node ? el("td", {}, v) : el("td", {}, v)));
}

function money(cents, currency) {
  return (cents / 100).toFixed(2) + " " + currency;
}

function seconds(value) {
  if (value == null) return "–";
  return value < 120 ? value.toFixed(0) + " s" : (value / 60).toFixed(1) + " min";
}

function ms(value) {
  return value < 1000 ? value + " ms" : (value / 1000).toFixed(2) + " s";
}

function time(text) {
  return text ? text.replace("T", " ").replace(/\.\d+Z$/, "Z") : "";
}

function render(screen) {
  $("#stack").textContent = "stack " + screen.stack;
  $("#read-only").hidden = !screen.readOnly;
  $("#refreshed").textContent = "refreshed " + time(screen.at);
  $("#refreshed").dataset.refresh = screen.refresh;
  $("#cost").textContent = `${screen.cost.calls} AWS calls in ${screen.cost.refreshMs} ms`;
  const emulatorWarning = screen.emulator && screen.emulator.warning;
  $("#emulator-warning").hidden = !emulatorWarning;
  $("#emulator-warning").textContent = emulatorWarning ? "⚠ " + emulatorWarning : "";
  const errors = $("#errors");
  errors.hidden = screen.errors.length === 0;
  errors.textContent = screen.errors.join(" · ");
  for (const form of document.querySelectorAll("button.action")) form.disabled = screen.readOnly;

  const by = screen.orders.byStatus;
  const inFlight = Object.entries(by)
    .filter(([s]) => !["COMPLETED", "CANCELLED", "REJECTED", "NEEDS_ATTENTION"].includes(s))
    .reduce((sum, [, n]) => sum + n, 0);
  const running = screen.executions.RUNNING ? screen.executions.RUNNING.count : 0;
  const dlqDepth = screen.queues.reduce((sum, q) => sum + (q.dlqDepth || 0), 0);
  const tile = (label, value, cls) => el("div", { class: "tile " + (cls || "") }, el("b", {}, value), label);
  $("#tiles").replaceChildren(
    tile("orders" + (screen.orders.truncated ? " (first read)" : ""), screen.orders.total),
    tile("in flight", inFlight),
    tile("running sagas", running),
    tile("completed", by.COMPLETED || 0, "ok"),
    tile("cancelled", by.CANCELLED || 0),
    tile("needs attention", by.NEEDS_ATTENTION || 0, by.NEEDS_ATTENTION ? "bad" : ""),
    tile("messages in DLQs", dlqDepth, dlqDepth ? "bad" : ""),
    tile("standard saga slots held", screen.standardSagaSlotsHeld)
  );

  const lanes = screen.orders.byLane;
  fill(
    "#statuses",
    Object.keys(by).map((status) =>
      el("tr", { "data-status": status }, ...cells([
        el("span", { class: "status-" + status }, status),
        (lanes.STANDARD || {})[status] || 0,
        (lanes.VIP || {})[status] || 0,
        by[status],
      ]))
    )
  );
  fill(
    "#executions",
    Object.entries(screen.executions).map(([status, c]) =>
      el("tr", {}, ...cells([status, c.count + (c.more ? "+" : "")]))
    )
  );
  fill("#steps", screen.steps.map((s) => el("tr", {}, ...cells([s.step, s.count, ms(s.p50Ms), ms(s.p95Ms)]))));
  if (screen.verifyEverySeconds == null) $("#verdict").textContent = "off (nexus dashboard --verify-every 0)";
  else renderVerdict(screen.verdict);
  fill(
    "#queues",
    screen.queues.map((q) => {
      const redrive = el("button", { type: "button", class: "action", disabled: screen.readOnly || !q.dlqDepth }, "redrive");
      redrive.addEventListener("click", () =>
        act("POST", `/api/dlq/${encodeURIComponent(q.queue)}/redrive`, null, `Move every message of the ${q.queue} DLQ back to its queue?`)
      );
      return el("tr", { "data-queue": q.queue }, ...cells([
        q.queue,
        el("span", { class: "lane-" + q.lane }, q.lane),
        q.depth ?? "?",
        seconds(q.oldestAgeSeconds),
        el("span", { class: q.dlqDepth ? "bad" : "" }, q.dlqDepth ?? "?"),
        seconds(q.dlqOldestAgeSeconds),
        redrive,
      ]));
    })
  );
  fill(
    "#orders",
    screen.orders.newest.map((o) => {
      const row = el("tr", { class: "clickable", "data-order-id": o.orderId, "data-status": o.status, "data-lane": o.lane }, ...cells([
        o.orderId,
        el("span", { class: "lane-" + o.lane }, o.lane),
        el("span", { class: "status-" + o.status }, o.status),
        o.reason || "",
        money(o.totalCents, o.currency),
        o.attempt,
        time(o.createdAt),
        time(o.updatedAt),
      ]));
      row.addEventListener("click", () => openDetail(o.orderId));
      if (o.orderId === openOrder && o.updatedAt !== openOrderUpdatedAt && detailLoading !== o.orderId) openDetail(o.orderId);
      return row;
    })
  );
  fill(
    "#inventory",
    screen.inventory.map((item) => {
      const share = item.initial ? Math.min(100, (100 * item.available) / item.initial) : 0;
      const filled = el("span");
      filled.style.width = share + "%";
      return el("tr", { "data-sku": item.sku }, ...cells([item.sku, `${item.available} / ${item.initial}`, el("div", { class: "bar" }, filled)]));
    })
  );
  // The SKU field is filled in once, with a SKU in stock; after that it is the operator's.
  const sku = $("#submit-sku");
  if (!sku.dataset.filled && screen.inventory.length) {
    sku.dataset.filled = "yes";
    const stocked = screen.inventory.find((i) => i.available > 0) || screen.inventory[0];
    sku.value = stocked.sku;
  }
  fill(
    "#chaos",
    SERVICES.map((service) => {
      const c = screen.chaos.services[service] || { failureRate: 0, latencyMs: 0, crashRate: 0 };
      return el("tr", { "data-service": service }, ...cells([service, c.failureRate, c.latencyMs, c.crashRate]));
    })
  );
  renderChart(screen.orders.throughput);
}

function renderVerdict(verdict) {
  const node = $("#verdict");
  if (!verdict) return;
  node.className = verdict.violations.length ? "bad" : "ok";
  node.dataset.violations = verdict.violations.length;
  const head = verdict.violations.length
    ? `${verdict.violations.length} violation(s)`
    : "no violations";
  node.replaceChildren(
    `${head} over ${verdict.orders} orders (${verdict.inFlight} in flight), checked ${time(verdict.at)}`,
    ...verdict.violations.slice(0, 10).map((v) => el("div", {}, `${v.rule} ${v.subject}: ${v.detail}`))
  );
}

function renderChart(t) {
  const xs = t.submitted.map((_, i) => t.start + i * t.bucketSeconds);
  const reasons = Object.keys(t.cancelled).sort();
  const palette = ["#b3261e", "#a15c00", "#7a4fb5", "#00707a", "#8a6d00", "#444"];
  const series = [
    {},
    { label: "submitted", stroke: "#2f6fd6", width: 2 },
    { label: "completed", stroke: "#1b7f3b", width: 2 },
    ...reasons.map((r, i) => ({ label: "cancelled: " + r, stroke: palette[i % palette.length], dash: [4, 3] })),
  ];
  const data = [xs, t.submitted, t.completed, ...reasons.map((r) => t.cancelled[r])];
  const key = reasons.join("|");
  const container = $("#chart");
  if (!chart || key !== chartSeriesKey) {
    if (chart) chart.destroy();
    chartSeriesKey = key;
    chart = new uPlot(
      { width: Math.max(400, container.clientWidth - 8), height: 220, series, scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] } } },
      data,
      container
    );
  } else {
    chart.setData(data);
  }
}

async function openDetail(orderId) {
  openOrder = orderId;
  detailLoading = orderId;
  let response, body;
  try {
    response = await fetch(`/api/orders/${encodeURIComponent(orderId)}?token=${encodeURIComponent(token)}`);
    body = await response.json();
  } finally {
    if (detailLoading === orderId) detailLoading = null;
  }
  if (openOrder !== orderId) return;
  const section = $("#detail");
  section.hidden = false;
  $("#detail-id").textContent = orderId;
  if (!response.ok) {
    $("#detail-order").textContent = `${body.error}: ${body.message}`;
    return;
  }
  openOrderUpdatedAt = body.order.updatedAt;
  section.dataset.status = body.order.status;
  let previous = null;
  fill(
    "#detail-events",
    body.events.map((e) => {
      const at = Date.parse(e.at);
      const since = previous == null ? "" : ms(at - previous);
      previous = at;
      return el("tr", { "data-step": e.status }, ...cells([e.sequence, time(e.at), since, e.status, e.reason || ""]));
    })
  );
  const ended = body.executionEnded;
  $("#detail-ended").textContent = body.states.length === 0 ? "" : ended ? `(${ended.status} at ${time(ended.at)})` : "(running)";
  fill(
    "#detail-states",
    body.states.map((s) =>
      el("tr", { "data-state": s.state }, ...cells([s.state, time(s.entered), s.durationMs == null ? "running" : ms(s.durationMs), s.outcome]))
    )
  );
  $("#detail-order").textContent = JSON.stringify(body.order, null, 2);
  $("#detail-logs-note").textContent = body.logsDropped ? `(the newest ${body.logs.length}; ${body.logsDropped} older not shown)` : `(${body.logs.length})`;
  // Shown in their own columns, or noise beside the order (as `nexus logs` prints them).
  const hidden = new Set(["timestamp", "level", "message", "function", "orderId", "_aws", "metric", "executionArn", "correlationId", "requestId", "xrayTraceId"]);
  fill(
    "#detail-logs",
    body.logs.map((l) => {
      const line = l.line || {};
      const fields = Object.entries(line)
        .filter(([k]) => !hidden.has(k))
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(" ");
      return el("tr", {}, ...cells([new Date(l.timestampMs).toISOString().slice(11, 23), l.function, line.level || "", line.message || ""]), el("td", { class: "wrap" }, fields));
    })
  );
}

function confirmAction(text) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  dialog.showModal();
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.close();
      $("#confirm-yes").onclick = null;
      $("#confirm-no").onclick = null;
      resolve(answer);
    };
    $("#confirm-yes").onclick = () => done(true);
    $("#confirm-no").onclick = () => done(false);
  });
}

async function act(method, path, body, question) {
  const result = $("#result");
  if (!(await confirmAction(question))) {
    result.textContent = "cancelled";
    result.dataset.outcome = "cancelled";
    return null;
  }
  result.textContent = "working…";
  result.dataset.outcome = "pending";
  const response = await fetch(path, {
    method,
    headers: { "content-type": "application/json", "x-nexus-token": token },
    body: body == null ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  result.className = "result " + (response.ok ? "ok" : "bad");
  result.dataset.outcome = response.ok ? "ok" : "error";
  result.textContent = response.ok ? JSON.stringify(answer) : `${answer.error}: ${answer.message}`;
  return response.ok ? answer : null;
}

function setUpControls() {
  $("#chaos-service").replaceChildren(...SERVICES.map((s) => el("option", { value: s }, s)));
  $("#chaos-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const service = $("#chaos-service").value;
    const settings = {
      failureRate: Number($("#chaos-failure").value),
      latencyMs: Number($("#chaos-latency").value),
      crashRate: Number($("#chaos-crash").value),
    };
    act("POST", `/api/chaos/${service}`, settings, `Set chaos for ${service}: ${JSON.stringify(settings)}?`);
  });
  $("#chaos-clear").addEventListener("click", () => act("DELETE", "/api/chaos", null, "Clear every chaos setting?"));
  $("#submit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const order = { tier: $("#submit-tier").value, sku: $("#submit-sku").value, quantity: Number($("#submit-quantity").value) };
    const answer = await act("POST", "/api/orders", order, `Submit a ${order.tier} order of ${order.quantity} × ${order.sku}?`);
    if (answer) {
      // The detail opens when the order is recorded (the next screens list it), not before: until intake
      // has read the message there is no order to show.
      $("#result").dataset.orderId = answer.orderId;
      openOrder = answer.orderId;
      openOrderUpdatedAt = null;
    }
  });
  $("#detail-close").addEventListener("click", () => {
    openOrder = null;
    $("#detail").hidden = true;
  });
}

function connect() {
  const live = $("#live");
  const source = new EventSource(`/api/events?token=${encodeURIComponent(token)}`);
  source.addEventListener("screen", (event) => {
    live.textContent = "live";
    live.className = "badge ok";
    render(JSON.parse(event.data));
  });
  // EventSource reconnects by itself; the badge says when it is trying.
  source.onerror = () => {
    live.textContent = "reconnecting…";
    live.className = "badge bad";
  };
}

setUpControls();
connect();
