// Trader dashboard: snapshot views over HTTP, then live updates from /stream (SSE).
// Market data needs no key; trading and the account panel need the trader's API key,
// asked for once and kept in sessionStorage (gone when the tab closes).
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { instrument: null, bars: [], open: null, windows: [], trades: [], timers: {} };

const KEY = "exchange-key";
const auth = () => {
  const key = sessionStorage.getItem(KEY);
  return key ? { Authorization: `Bearer ${key}` } : {};
};

async function getJSON(path) {
  const response = await fetch(path, { headers: auth() });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function fmt(value, digits = 2) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function later(name, fn, ms = 250) {
  clearTimeout(state.timers[name]);
  state.timers[name] = setTimeout(fn, ms);
}

async function allInstruments() {
  // the listing comes a page at a time: follow next_cursor to its end
  const rows = [];
  let cursor = null;
  do {
    const query = cursor ? `?limit=1000&cursor=${encodeURIComponent(cursor)}` : "?limit=1000";
    const page = await getJSON(`/instruments${query}`);
    rows.push(...page.instruments);
    cursor = page.next_cursor;
  } while (cursor);
  return rows;
}

async function loadInstruments() {
  const instruments = await allInstruments();
  const select = $("#instrument");
  const known = new Set([...select.options].map((o) => o.value));
  for (const row of instruments) {
    if (!known.has(row.instrument)) select.add(new Option(row.instrument, row.instrument));
  }
  if (!state.instrument && instruments.length) await selectInstrument(instruments[0].instrument);
  if (!instruments.length) later("instruments", loadInstruments, 2000);
}

async function selectInstrument(instrument) {
  state.instrument = instrument;
  $("#instrument").value = instrument;
  await Promise.all([loadBook(), loadTrades(), loadBars(), loadProfit()]);
}

async function loadBook() {
  const book = await getJSON(`/orderbook/${state.instrument}?depth=20`);
  const rows = Math.max(book.bids.length, book.asks.length);
  const body = $("#book tbody");
  body.replaceChildren();
  for (let i = 0; i < rows; i++) {
    const bid = book.bids[i] || {}, ask = book.asks[i] || {};
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${bid.orders ?? ""}</td><td>${bid.quantity !== undefined ? fmt(bid.quantity, 0) : ""}</td>` +
      `<td class="buy">${bid.price !== undefined ? fmt(bid.price) : ""}</td><td class="sell">${ask.price !== undefined ? fmt(ask.price) : ""}</td>` +
      `<td>${ask.quantity !== undefined ? fmt(ask.quantity, 0) : ""}</td><td>${ask.orders ?? ""}</td>`;
    tr.dataset.bid = bid.price ?? ""; tr.dataset.ask = ask.price ?? "";
    tr.dataset.bidQuantity = bid.quantity ?? ""; tr.dataset.askQuantity = ask.quantity ?? "";
    body.append(tr);
  }
}

function tapeRow(trade, fresh) {
  const tr = document.createElement("tr");
  tr.dataset.tradeId = trade.trade_id;
  if (fresh) tr.className = "fresh";
  const side = trade.aggressor === "BUY" ? "buy" : "sell";
  tr.innerHTML = `<td>${trade.seq}</td><td>${trade.update_timestamp.slice(-8)}</td>` +
    `<td class="${side}">${trade.aggressor}</td><td>${fmt(trade.quantity, 0)}</td><td>${fmt(trade.price)}</td>`;
  return tr;
}

async function loadTrades() {
  const { trades } = await getJSON(`/trades/${state.instrument}?limit=50`);
  $("#tape tbody").replaceChildren(...trades.map((t) => tapeRow(t, false)));
  if (trades.length) $("#last").textContent = `last ${fmt(trades[0].price)}`;
}

function addTrade(trade) {
  const body = $("#tape tbody");
  if (body.querySelector(`tr[data-trade-id="${trade.trade_id}"]`)) return; // a re-sent copy
  body.prepend(tapeRow(trade, true));
  while (body.children.length > 50) body.lastChild.remove();
  $("#last").textContent = `last ${fmt(trade.price)}`;
}

async function loadBars() {
  const data = await getJSON(`/bars/${state.instrument}`);
  state.windows = data.windows;
  state.bars = data.bars;
  state.open = data.open;
  showLegend();
  drawChart();
}

function addBar(bar) {
  if (bar.final) {
    state.bars = state.bars.filter((b) => b.bar_start !== bar.bar_start).concat([bar]).slice(-120);
    if (state.open && state.open.bar_start === bar.bar_start) state.open = null;
  } else {
    state.open = bar;
  }
  drawChart();
}

// The series' colours are CSS variables (dashboard.css), shared by the canvas and the legend:
// the page's CSP allows no inline style, so the legend names a class, never a colour.
const SMA_CLASSES = 4;
const colour = (name) => getComputedStyle(document.documentElement).getPropertyValue(`--${name}`).trim();

function showLegend() {
  const series = [["VWAP", "vwap"], ["close", "close"], ...state.windows.map((n, i) => [`SMA ${n}`, `sma-${i % SMA_CLASSES}`])];
  $("#legend").replaceChildren(...series.map(([name, css]) => {
    const span = document.createElement("span");
    span.className = `series ${css}`;
    span.textContent = name;
    return span;
  }));
}

// Round axis steps (1, 2, 2.5 or 5 times a power of ten), so labels read like prices.
function ticks(low, high, count) {
  const raw = (high - low) / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = power * ([1, 2, 2.5, 5, 10].find((m) => m * power >= raw) ?? 10);
  const first = Math.ceil(low / step) * step;
  const values = [];
  for (let v = first; v <= high + step * 1e-9; v += step) values.push(v);
  const digits = Math.ceil(-Math.log10(step) - 1e-9) + (step === 2.5 * power ? 1 : 0);
  return { values, digits: Math.min(8, Math.max(2, digits)) };  // prices: cents at least
}

// Drawn at the canvas's CSS size times devicePixelRatio, in CSS pixels: sharp on any
// screen, labels the same size on a phone as on a desktop.
function drawChart() {
  const canvas = $("#chart");
  const width = canvas.clientWidth, height = canvas.clientHeight, ratio = window.devicePixelRatio || 1;
  if (!width || !height) return;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const bars = state.open ? state.bars.concat([state.open]) : state.bars.slice();
  if (!bars.length) return;
  const series = [["vwap", (b) => Number(b.vwap)], ["close", (b) => Number(b.close)]]
    .concat(state.windows.map((n, i) => [`sma-${i % SMA_CLASSES}`, (b) => Number(b.sma[String(n)])]));
  const values = bars.flatMap((b) => series.map(([, f]) => f(b))).filter(Number.isFinite);
  if (!values.length) return;
  const lowest = Math.min(...values), highest = Math.max(...values);
  const pad = (highest - lowest) * 0.1 || Math.max(Math.abs(highest) * 0.01, 0.01);
  const low = lowest - pad, high = highest + pad;
  ctx.font = "12px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  const axis = ticks(low, high, Math.max(2, Math.floor(height / 40)));
  const labels = axis.values.map((v) => v.toFixed(axis.digits));
  const left = 8 + Math.max(...labels.map((l) => ctx.measureText(l).width)) + 8;
  const right = width - 10, top = 10, bottom = height - 24;
  const x = (i) => left + (bars.length === 1 ? (right - left) / 2 : (i * (right - left)) / (bars.length - 1));
  const y = (v) => bottom - ((v - low) * (bottom - top)) / (high - low);
  ctx.strokeStyle = colour("grid");
  ctx.fillStyle = colour("axis");
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  axis.values.forEach((v, k) => {
    const at = Math.round(y(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(left, at); ctx.lineTo(right, at); ctx.stroke();
    ctx.fillText(labels[k], left - 8, at);
  });
  // bar start times along the bottom: every k-th bar, k as small as keeps them apart, and
  // the last bar's; each kept inside the canvas
  ctx.textBaseline = "alphabetic";
  ctx.textAlign = "left";
  const seconds = bars.some((b) => b.bar_start.slice(17, 19) !== "00");  // bars shorter than a minute
  const time = (b) => b.bar_start.slice(11, seconds ? 19 : 16);
  const label = (j) => {
    const text = time(bars[j]), w = ctx.measureText(text).width;
    const from = Math.min(Math.max(x(j) - w / 2, 2), width - w - 2);
    return { text, from, to: from + w };
  };
  const last = label(bars.length - 1), gap = 16;
  const every = bars.length > 1 ? Math.max(1, Math.ceil((last.to - last.from + gap) / ((right - left) / (bars.length - 1)))) : 1;
  const shown = [last];
  for (let j = 0; j < bars.length - 1; j += every) {
    const at = label(j);
    if (at.to + gap <= last.from) shown.push(at);
  }
  for (const at of shown) ctx.fillText(at.text, at.from, height - 7);
  series.forEach(([name, f], i) => {
    const stroke = colour(name);
    ctx.strokeStyle = stroke;
    ctx.lineWidth = i < 2 ? 1.5 : 2;
    ctx.beginPath();
    let drawing = false;
    bars.forEach((b, j) => {
      const v = f(b);
      if (!Number.isFinite(v)) { drawing = false; return; }
      if (drawing) ctx.lineTo(x(j), y(v)); else ctx.moveTo(x(j), y(v));
      drawing = true;
    });
    ctx.stroke();
    if (name === "vwap") {
      ctx.fillStyle = stroke;
      bars.forEach((b, j) => { if (Number.isFinite(f(b))) ctx.fillRect(x(j) - 2, y(f(b)) - 2, 4, 4); });
    }
  });
}

async function loadProfit() {
  const data = await getJSON(`/profit/${state.instrument}`);
  showProfit(data.current);
}

function showProfit(p) {
  $("#profit").textContent = p ? `window profit ${fmt(p.profit)} (open ${fmt(p.opening_price)} → SMA ${fmt(p.closing_price)})` : "";
}

async function loadAccount() {
  const account = $("#account").value.trim();
  const body = $("#positions tbody");
  try {
    if (!account) throw new Error("no account");
    // positions come a page at a time, each with its own totals: follow next_cursor, add up
    const data = { positions: [], realized: 0, unrealized: 0, total: 0 };
    let cursor = null;
    do {
      const query = cursor ? `?limit=1000&cursor=${encodeURIComponent(cursor)}` : "?limit=1000";
      const page = await getJSON(`/accounts/${encodeURIComponent(account)}${query}`);
      data.positions.push(...page.positions);
      for (const key of ["realized", "unrealized", "total"]) data[key] += Number(page[key]);
      cursor = page.next_cursor;
    } while (cursor);
    body.replaceChildren(...data.positions.map((p) => {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td>${p.instrument}</td><td>${fmt(p.position, 0)}</td><td>${fmt(p.average_cost)}</td>` +
        `<td>${fmt(p.realized)}</td><td>${fmt(p.unrealized)}</td><td>${fmt(p.total)}</td>`;
      return tr;
    }));
    $("#realized").textContent = fmt(data.realized);
    $("#unrealized").textContent = fmt(data.unrealized);
    $("#total").textContent = fmt(data.total);
  } catch (error) {
    body.replaceChildren();
    for (const id of ["#realized", "#unrealized", "#total"]) $(id).textContent = "";
  }
}

const handlers = {};
const live = { abort: null };

function online(yes) {
  $("#status").textContent = yes ? "live" : "reconnecting…";
  $("#status").className = yes ? "status online" : "status offline";
}

function dispatch(block, last) {
  const event = { type: "message", data: "", id: null };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const at = line.indexOf(": ");
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? "" : line.slice(at + 2);
    if (field === "event") event.type = value;
    else if (field === "data") event.data += value;
    else if (field === "id") event.id = value;
  }
  if (handlers[event.type]) handlers[event.type]({ data: event.data });
  return event.id || last;
}

// Server-Sent Events over fetch, so that the request can carry the key (EventSource
// cannot send headers); it reconnects with Last-Event-ID like EventSource does.
async function connect() {
  if (live.abort) live.abort.abort();
  const abort = (live.abort = new AbortController());
  let last = null;
  while (!abort.signal.aborted) {
    try {
      const account = $("#account").value.trim();
      const query = account ? `?account=${encodeURIComponent(account)}` : "";
      const headers = { ...auth(), ...(last ? { "Last-Event-ID": last } : {}) };
      const response = await fetch(`/stream${query}`, { headers, signal: abort.signal });
      if (!response.ok) throw new Error(`/stream: ${response.status}`);
      online(true);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          last = dispatch(buffer.slice(0, end), last);
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (abort.signal.aborted) return;
    }
    online(false);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

const mine = (data) => data.instrument === state.instrument;
const account = () => $("#account").value.trim();
handlers.reset = () => state.instrument && selectInstrument(state.instrument);
handlers.trade = (e) => {
  const trade = JSON.parse(e.data);
  if (!state.instrument) return later("instruments", loadInstruments, 100);
  if (mine(trade)) { addTrade(trade); later("book", loadBook); }
  if (account() && (trade.buyer === account() || trade.seller === account())) later("account", loadAccount, 400);
};
handlers.order = (e) => {
  const report = JSON.parse(e.data);
  if (!state.instrument) return later("instruments", loadInstruments, 100);
  if (mine(report)) later("book", loadBook);
};
handlers.bar = (e) => { const bar = JSON.parse(e.data); if (mine(bar)) addBar(bar); };
handlers.profit = (e) => { const p = JSON.parse(e.data); if (mine(p) && !p.final) showProfit(p); };
handlers.pnl = (e) => { if (JSON.parse(e.data).account === account()) later("account", loadAccount, 400); };

// Who the key is: the account panel shows that account, and only that one. Without a key
// the page asks nothing until "Sign in" (with an empty field: to learn whether keys are off),
// so that opening it costs no failed authentication, which the gateway counts per address.
async function signIn(asked = false) {
  const keyed = Boolean(sessionStorage.getItem(KEY));
  const response = keyed || asked ? await fetch("/whoami", { headers: auth() }) : null;
  const known = response && response.ok ? await response.json() : null;
  if (response && !known) {
    sessionStorage.removeItem(KEY);
    $("#who").textContent = !keyed ? "enter your API key"
      : response.status === 401 ? "unknown key" : `sign-in failed (${response.status})`;
  } else if (known && known.account) {
    $("#who").textContent = `${known.account}${known.admin ? " (admin)" : ""}`;
  } else if (known && !known.auth) {
    $("#who").textContent = "keys are off: any account";
  }
  const signedIn = Boolean(known && known.account);
  $("#account").value = signedIn ? known.account : "";
  $("#account").readOnly = !(known && !known.auth);  // editable only when keys are off
  $("#key").hidden = signedIn || Boolean(known && !known.auth);
  $("#key-form button[type=submit]").hidden = $("#key").hidden;
  $("#sign-out").hidden = !signedIn;
  loadAccount();
  connect();
}

$("#key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const key = $("#key").value.trim();
  $("#key").value = "";
  if (key) sessionStorage.setItem(KEY, key);
  signIn(true);
});
$("#sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  $("#who").textContent = "";
  signIn();
});

$("#instrument").addEventListener("change", (e) => selectInstrument(e.target.value));
$("#account").addEventListener("change", () => { loadAccount(); connect(); });
$("#ticket").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const order = { instrument: state.instrument, account: account() || undefined };
  for (const [key, value] of form.entries()) order[key] = value;
  if (order.order_type === "MARKET") delete order.price;
  const headers = { "Content-Type": "application/json", ...auth() };
  const response = await fetch("/orders", { method: "POST", headers, body: JSON.stringify(order) });
  const answer = await response.json();
  $("#ticket-result").textContent = response.ok ? `order ${answer.id} sent` : answer.errors.join("; ");
  $("#ticket-result").dataset.orderId = response.ok ? answer.id : "";
});

new ResizeObserver(() => later("chart", drawChart, 50)).observe($("#chart"));
signIn();
loadInstruments().catch((error) => { $("#status").textContent = String(error); });
