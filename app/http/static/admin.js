// The admin console: plain modern JavaScript, no build step, no library.
//
// It signs in with POST /api/auth/login and calls /api/admin/...; the API checks the role on
// every call, so this page decides nothing: a player who opens it sees FORBIDDEN. Tokens: the
// access token lives only in memory, the refresh token in sessionStorage (this tab only).
// Charts are SVG drawn here; their colours come from admin.css classes (light and dark), as
// the Content-Security-Policy allows no inline style.

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

const state = {
  accessToken: null,
  refreshToken: sessionStorage.getItem("adminRefreshToken"),
  user: null,
  player: null, // the user on show in Players
  lastQuery: "", // the last search, listed again after a change
  boards: [],
  actions: [],
  editingBoard: null,
  editingAction: null,
  auditCursor: null,
  refreshing: null,
};

// ---------------------------------------------------------------- API calls

class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `Request failed (${status})`);
    this.status = status;
    this.code = error?.code || "INTERNAL_SERVER_ERROR";
    this.details = error || {};
  }
}

async function request(path, { method = "GET", body, auth = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && state.accessToken) headers.Authorization = `Bearer ${state.accessToken}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, { code: "NETWORK", message: "The server cannot be reached." });
  }
  const payload = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, payload?.error);
  return payload;
}

// An admin call: on TOKEN_EXPIRED refresh once and retry; on 401 sign out.
async function api(path, options = {}) {
  try {
    return await request(path, options);
  } catch (error) {
    if (error.code === "TOKEN_EXPIRED" && (await refreshTokens())) return request(path, options);
    if (error.status === 401) signOut();
    throw error;
  }
}

function refreshTokens() {
  if (!state.refreshToken) return Promise.resolve(false);
  state.refreshing ??= request("/api/auth/refresh", {
    method: "POST",
    body: { refreshToken: state.refreshToken },
    auth: false,
  })
    .then((tokens) => {
      adoptTokens(tokens);
      return true;
    })
    .catch(() => false)
    .finally(() => {
      state.refreshing = null;
    });
  return state.refreshing;
}

function adoptTokens(tokens) {
  state.accessToken = tokens.accessToken;
  state.refreshToken = tokens.refreshToken;
  state.user = tokens.user;
  sessionStorage.setItem("adminRefreshToken", tokens.refreshToken);
}

// ---------------------------------------------------------------- messages

// Every API error shows as "CODE: message" (plus the field at fault), until the next action.
function showError(error) {
  const box = $("status");
  box.replaceChildren();
  const code = document.createElement("code");
  code.textContent = error.code || "ERROR";
  box.append(code, `: ${error.message}`);
  if (error.details?.field) box.append(` (field: ${error.details.field})`);
  box.hidden = false;
  $("notice").hidden = true;
}

function notify(text) {
  $("status").hidden = true;
  $("notice").textContent = text;
  $("notice").hidden = false;
}

function clearMessages() {
  $("status").hidden = true;
  $("notice").hidden = true;
}

// Run an action, reporting its error; returns its result or undefined.
async function attempt(work) {
  clearMessages();
  try {
    return await work();
  } catch (error) {
    showError(error);
    return undefined;
  }
}

const fmt = new Intl.NumberFormat();
const when = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "—");

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (className) td.className = className;
  row.append(td);
  return td;
}

function button(label, onClick, className = "small secondary") {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

// ---------------------------------------------------------------- sign in and out

async function signIn(event) {
  event.preventDefault();
  await attempt(async () => {
    const tokens = await request("/api/auth/login", {
      method: "POST",
      auth: false,
      body: { username: $("login-username").value.trim(), password: $("login-password").value },
    });
    adoptTokens(tokens);
    await enter();
  });
}

// Show the console once the API agrees this account is an admin (FORBIDDEN otherwise).
async function enter() {
  await api("/api/admin/boards");
  $("login-panel").hidden = true;
  $("console").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = state.user?.username || "";
  $("login-password").value = "";
  selectTab("players");
}

function signOut() {
  state.accessToken = null;
  state.refreshToken = null;
  sessionStorage.removeItem("adminRefreshToken");
  $("console").hidden = true;
  $("who").hidden = true;
  $("login-panel").hidden = false;
}

// ---------------------------------------------------------------- tabs

const LOADERS = {
  players: async () => {},
  boards: () => loadBoards(),
  catalog: () => loadActions(),
  audit: () => loadAudit(true),
  analytics: () => loadAnalytics(),
};

function selectTab(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  }
  for (const panel of document.querySelectorAll(".tab")) panel.hidden = panel.id !== `tab-${name}`;
  attempt(LOADERS[name]);
}

// ---------------------------------------------------------------- players

async function search(event) {
  event.preventDefault();
  state.lastQuery = $("search-query").value.trim();
  await attempt(listUsers);
}

// The users matching the last search (again after a change, so their scores stay current).
async function listUsers() {
  if (!state.lastQuery) return;
  const found = await api(`/api/admin/users?query=${encodeURIComponent(state.lastQuery)}`);
  const list = $("search-results");
  list.replaceChildren();
  if (!found.users.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "No user found.";
    list.append(li);
  }
  for (const user of found.users) {
    const li = document.createElement("li");
    li.append(button(`${user.username} · ${fmt.format(user.score)}`, () => attempt(() => showPlayer(user.userId))));
    list.append(li);
  }
}

async function showPlayer(userId) {
  const user = await api(`/api/admin/users/${userId}`);
  state.player = user;
  $("player").hidden = false;
  $("player-name").textContent = user.username;
  const rank = user.rank ? `rank ${user.rank}` : "unranked";
  $("player-facts").textContent =
    `${user.role} · score ${fmt.format(user.score)} · ${rank} · joined ${when(user.createdAt)} · id ${user.userId}`;
  $("player-ban-state").hidden = !user.bannedAt;
  $("player-ban-state").textContent = user.bannedAt ? `Banned since ${when(user.bannedAt)}` : "";
  $("ban").disabled = Boolean(user.bannedAt);
  $("unban").disabled = !user.bannedAt;
  const boards = $("player-boards");
  boards.replaceChildren();
  for (const b of user.boards) {
    const li = document.createElement("li");
    li.textContent = `${b.boardId} (${b.period}): ${fmt.format(b.score)}, rank ${b.rank}`;
    boards.append(li);
  }
  if (!user.boards.length) boards.append(Object.assign(document.createElement("li"), { textContent: "On no board now." }));
  $("history-total").textContent = `(${fmt.format(user.historyTotal)})`;
  const rows = $("history-rows");
  rows.replaceChildren();
  for (const h of user.history) {
    const tr = document.createElement("tr");
    tr.dataset.id = h.id;
    cell(tr, when(h.createdAt), "when");
    cell(tr, h.kind === "completion" ? `${h.actionName ?? h.actionId}` : `Adjustment: ${h.reason ?? ""}`);
    cell(tr, (h.points > 0 ? "+" : "") + fmt.format(h.points), "num");
    const actions = cell(tr, "");
    if (h.kind === "completion") actions.append(button("Remove", () => removeCompletion(h)));
    rows.append(tr);
  }
}

const reason = () => $("reason").value.trim();

async function adjust() {
  const player = state.player;
  if (!player) return;
  const done = await attempt(() =>
    api(`/api/admin/users/${player.userId}/adjustments`, {
      method: "POST",
      body: { points: Number($("adjust-points").value), reason: reason() },
    }),
  );
  if (!done) return;
  notify(`Adjusted ${done.username} by ${done.points}: score ${fmt.format(done.previousScore)} → ${fmt.format(done.score)}.`);
  await attempt(() => Promise.all([showPlayer(player.userId), listUsers()]));
}

async function removeCompletion(entry) {
  const player = state.player;
  const done = await attempt(() =>
    api(`/api/admin/users/${player.userId}/completions/${entry.id}`, {
      method: "DELETE",
      body: { reason: reason() },
    }),
  );
  if (!done) return;
  notify(`Removed ${entry.actionName ?? entry.actionId} from ${done.username}: score ${fmt.format(done.score)}.`);
  await attempt(() => Promise.all([showPlayer(player.userId), listUsers()]));
}

async function setBan(banned) {
  const player = state.player;
  if (!player) return;
  const verb = banned ? "ban" : "unban";
  const done = await attempt(() =>
    api(`/api/admin/users/${player.userId}/${verb}`, { method: "POST", body: { reason: reason() } }),
  );
  if (!done) return;
  notify(`${player.username} is ${done.banned ? "banned" : "no longer banned"}.`);
  await attempt(() => Promise.all([showPlayer(player.userId), listUsers()]));
}

// ---------------------------------------------------------------- boards

async function loadBoards() {
  const found = await api("/api/admin/boards");
  state.boards = found.boards;
  const rows = $("board-rows");
  rows.replaceChildren();
  for (const b of found.boards) {
    const tr = document.createElement("tr");
    tr.dataset.id = b.boardId;
    cell(tr, b.boardId);
    cell(tr, b.name);
    cell(tr, b.window);
    cell(tr, b.actionTag ?? "—");
    cell(tr, b.startsAt ? `${when(b.startsAt)} → ${when(b.endsAt)}` : b.period ?? "—");
    cell(tr, b.state, `state-${b.state}`);
    const actions = cell(tr, "");
    actions.append(button("Edit", () => editBoard(b)));
    if (!b.builtIn && b.state !== "ended") actions.append(" ", button("End", () => endBoard(b)));
    rows.append(tr);
  }
}

// datetime-local values are read and shown as UTC (the labels say so).
const fromUtc = (iso) => (iso ? new Date(iso).toISOString().slice(0, 16) : "");

function editBoard(board) {
  state.editingBoard = board;
  $("board-form-title").textContent = `Edit ${board.boardId}`;
  $("board-id").value = board.boardId;
  $("board-id").disabled = true;
  $("board-window").value = board.window;
  $("board-window").disabled = true;
  $("board-tag").value = board.actionTag ?? "";
  $("board-tag").disabled = true;
  $("board-name").value = board.name;
  $("board-starts").value = fromUtc(board.startsAt);
  $("board-ends").value = fromUtc(board.endsAt);
  $("board-submit").textContent = "Save board";
  $("board-cancel").hidden = false;
  $("board-name").focus();
}

function resetBoardForm() {
  state.editingBoard = null;
  $("board-form").reset();
  for (const id of ["board-id", "board-window", "board-tag"]) $(id).disabled = false;
  $("board-form-title").textContent = "New board";
  $("board-submit").textContent = "Create board";
  $("board-cancel").hidden = true;
}

function utcField(id) {
  const value = $(id).value;
  return value ? new Date(`${value}Z`).toISOString() : null;
}

async function saveBoard(event) {
  event.preventDefault();
  const editing = state.editingBoard;
  const reasonText = $("board-reason").value.trim() || undefined;
  const starts = utcField("board-starts");
  const ends = utcField("board-ends");
  let done;
  if (editing) {
    const body = { reason: reasonText };
    if ($("board-name").value.trim() !== editing.name) body.name = $("board-name").value;
    if (starts && starts !== (editing.startsAt && new Date(editing.startsAt).toISOString())) body.startsAt = starts;
    if (ends && ends !== (editing.endsAt && new Date(editing.endsAt).toISOString())) body.endsAt = ends;
    done = await attempt(() => api(`/api/admin/boards/${editing.boardId}`, { method: "PATCH", body }));
  } else {
    const body = {
      boardId: $("board-id").value.trim(),
      name: $("board-name").value,
      window: $("board-window").value,
      reason: reasonText,
    };
    if ($("board-tag").value.trim()) body.actionTag = $("board-tag").value.trim();
    if (starts) body.startsAt = starts;
    if (ends) body.endsAt = ends;
    done = await attempt(() => api("/api/admin/boards", { method: "POST", body }));
  }
  if (!done) return;
  notify(`${editing ? "Saved" : "Created"} board ${done.boardId} (${done.state}).`);
  resetBoardForm();
  await attempt(loadBoards);
}

async function endBoard(board) {
  const reasonText = $("board-reason").value.trim();
  const done = await attempt(() =>
    api(`/api/admin/boards/${board.boardId}/end`, { method: "POST", body: reasonText ? { reason: reasonText } : {} }),
  );
  if (!done) return;
  notify(`Ended board ${done.boardId} at ${when(done.endedAt)}.`);
  await attempt(loadBoards);
}

// ---------------------------------------------------------------- the catalog

async function loadActions() {
  const found = await api("/api/admin/actions");
  state.actions = found.actions;
  const rows = $("action-rows");
  rows.replaceChildren();
  for (const a of found.actions) {
    const tr = document.createElement("tr");
    tr.dataset.id = a.actionId;
    cell(tr, a.actionId);
    cell(tr, a.name);
    cell(tr, String(a.points), "num");
    cell(tr, a.repeat);
    cell(tr, a.verification === "quiz" ? `quiz (${a.questions.length} q.)` : a.verification);
    cell(tr, a.tags.join(", ") || "—");
    cell(tr, a.active ? "active" : "inactive", a.active ? "state-active" : "state-inactive");
    const actions = cell(tr, "");
    actions.append(button("Edit", () => editAction(a)), " ");
    actions.append(button(a.active ? "Deactivate" : "Activate", () => setActive(a, !a.active)));
    rows.append(tr);
  }
}

const lines = (text) => text.split("\n").map((l) => l.trim()).filter(Boolean);

function editAction(action) {
  state.editingAction = action;
  $("action-form-title").textContent = `Edit ${action.actionId}`;
  $("action-id").value = action.actionId;
  $("action-id").disabled = true;
  $("action-name").value = action.name;
  $("action-points").value = action.points;
  $("action-repeat").value = action.repeat;
  $("action-verification").value = action.verification;
  $("action-tags").value = action.tags.join(", ");
  $("action-description").value = action.description;
  $("action-questions").value = action.questions.join("\n");
  $("action-answers").value = "";
  $("action-submit").textContent = "Save action";
  $("action-cancel").hidden = false;
  $("action-name").focus();
}

function resetActionForm() {
  state.editingAction = null;
  $("action-form").reset();
  $("action-id").disabled = false;
  $("action-form-title").textContent = "New action";
  $("action-submit").textContent = "Create action";
  $("action-cancel").hidden = true;
}

function actionFields() {
  const body = {
    name: $("action-name").value,
    points: Number($("action-points").value),
    repeat: $("action-repeat").value,
    verification: $("action-verification").value,
    tags: $("action-tags").value.split(/[,\s]+/).filter(Boolean),
    description: $("action-description").value,
    questions: lines($("action-questions").value),
  };
  const answers = lines($("action-answers").value);
  if (answers.length) body.answers = answers;
  const reasonText = $("action-reason").value.trim();
  if (reasonText) body.reason = reasonText;
  return body;
}

async function saveAction(event) {
  event.preventDefault();
  const editing = state.editingAction;
  const body = actionFields();
  const done = await attempt(() =>
    editing
      ? api(`/api/admin/actions/${editing.actionId}`, { method: "PATCH", body })
      : api("/api/admin/actions", { method: "POST", body: { actionId: $("action-id").value.trim(), ...body } }),
  );
  if (!done) return;
  notify(`${editing ? "Saved" : "Created"} action ${done.actionId} (${done.points} points).`);
  resetActionForm();
  await attempt(loadActions);
}

async function setActive(action, active) {
  const done = await attempt(() => api(`/api/admin/actions/${action.actionId}`, { method: "PATCH", body: { active } }));
  if (!done) return;
  notify(`${done.actionId} is ${done.active ? "active" : "deactivated"}.`);
  await attempt(loadActions);
}

// ---------------------------------------------------------------- the audit log

async function loadAudit(fresh) {
  const cursor = fresh ? "" : `&cursor=${encodeURIComponent(state.auditCursor)}`;
  const page = await api(`/api/admin/audit?limit=50${cursor}`);
  const rows = $("audit-rows");
  if (fresh) rows.replaceChildren();
  for (const e of page.entries) {
    const tr = document.createElement("tr");
    cell(tr, when(e.at), "when");
    cell(tr, e.adminName);
    cell(tr, e.action);
    cell(tr, e.target ?? "—");
    cell(tr, e.reason ?? "—");
    cell(tr, JSON.stringify(e.details), "details");
    rows.append(tr);
  }
  state.auditCursor = page.nextCursor;
  $("audit-more").hidden = !page.nextCursor;
}

// ---------------------------------------------------------------- analytics: SVG charts

function svgEl(name, attrs = {}, text) {
  const el = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

// The top of an axis with four gridlines, each a whole 1, 2 or 5 x 10^n apart, so every
// label is a round whole number (counts are never fractions).
const TICKS = 4;
function niceMax(value) {
  const wanted = Math.max(value / TICKS, 1);
  const power = 10 ** Math.floor(Math.log10(wanted));
  for (const step of [1, 2, 5, 10]) if (wanted <= step * power) return step * power * TICKS;
  return 10 * power * TICKS;
}

const W = 560;
const H = 220;
const PAD = { left: 44, right: 12, top: 12, bottom: 34 };

// Bars (values) with an optional line (second) over the same x positions; labels under
// every `labelEvery`-th bar; a title per bar for the exact figure on hover.
function barChart(container, labels, values, { second, labelEvery = 1, secondName = "", valueName = "" } = {}) {
  container.replaceChildren();
  const top = niceMax(Math.max(...values, ...(second || []), 0));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img" });
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  for (let i = 0; i <= TICKS; i += 1) {
    const v = (top / TICKS) * i;
    svg.append(svgEl("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(svgEl("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, fmt.format(Math.round(v))));
  }
  const slot = plotW / Math.max(values.length, 1);
  values.forEach((v, i) => {
    const x = PAD.left + i * slot;
    const bar = svgEl("rect", {
      x: x + slot * 0.15,
      y: y(v),
      width: Math.max(slot * 0.7, 1),
      height: Math.max(PAD.top + plotH - y(v), 0),
      class: "bar",
    });
    bar.append(svgEl("title", {}, `${labels[i]}: ${fmt.format(v)} ${valueName}`.trim()));
    svg.append(bar);
    if (i % labelEvery === 0 || i === values.length - 1) {
      svg.append(svgEl("text", { x: x + slot / 2, y: H - PAD.bottom + 16, "text-anchor": "middle" }, labels[i]));
    }
  });
  if (second) {
    const points = second.map((v, i) => `${PAD.left + i * slot + slot / 2},${y(v)}`).join(" ");
    svg.append(svgEl("polyline", { points, class: "line second" }));
    second.forEach((v, i) => {
      const dot = svgEl("circle", { cx: PAD.left + i * slot + slot / 2, cy: y(v), r: 2.5, class: "dot" });
      dot.append(svgEl("title", {}, `${labels[i]}: ${fmt.format(v)} ${secondName}`.trim()));
      svg.append(dot);
    });
  }
  svg.append(svgEl("line", { x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0), class: "axis" }));
  svg.setAttribute("aria-label", `${valueName || "values"} from ${labels[0]} to ${labels[labels.length - 1]}`);
  container.append(svg);
}

// A line with a light area under it: a series over time.
function lineChart(container, labels, values, { labelEvery = 6, valueName = "" } = {}) {
  container.replaceChildren();
  const top = niceMax(Math.max(...values, 0));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img" });
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (values.length > 1 ? (i / (values.length - 1)) * plotW : plotW / 2);
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  for (let i = 0; i <= TICKS; i += 1) {
    const v = (top / TICKS) * i;
    svg.append(svgEl("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(svgEl("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, fmt.format(Math.round(v))));
  }
  const points = values.map((v, i) => `${x(i)},${y(v)}`);
  svg.append(svgEl("polygon", { points: `${x(0)},${y(0)} ${points.join(" ")} ${x(values.length - 1)},${y(0)}`, class: "area" }));
  svg.append(svgEl("polyline", { points: points.join(" "), class: "line" }));
  values.forEach((v, i) => {
    const hit = svgEl("circle", { cx: x(i), cy: y(v), r: values.length > 60 ? 1.5 : 2.5, class: "dot main" });
    hit.append(svgEl("title", {}, `${labels[i]}: ${fmt.format(v)} ${valueName}`.trim()));
    svg.append(hit);
    if (i % labelEvery === 0) {
      svg.append(svgEl("text", { x: x(i), y: H - PAD.bottom + 16, "text-anchor": "middle" }, labels[i]));
    }
  });
  svg.append(svgEl("line", { x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0), class: "axis" }));
  svg.setAttribute("aria-label", `${valueName} from ${labels[0]} to ${labels[labels.length - 1]}`);
  container.append(svg);
}

// Horizontal bars with the name on the left and the figure at the end: ranked items.
function rankChart(container, items, valueName) {
  container.replaceChildren();
  if (!items.length) {
    container.append(Object.assign(document.createElement("p"), { className: "empty-chart", textContent: "Nothing yet." }));
    return;
  }
  const rowH = 22;
  const height = items.length * rowH + 8;
  const labelW = 150;
  const top = Math.max(...items.map((i) => i.value), 1);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${height}`, class: "chart-svg", role: "img" });
  svg.setAttribute("aria-label", valueName);
  items.forEach((item, i) => {
    const yTop = 4 + i * rowH;
    const width = ((W - labelW - 70) * item.value) / top;
    svg.append(svgEl("text", { x: labelW - 8, y: yTop + 15, "text-anchor": "end" }, item.label.slice(0, 24)));
    const bar = svgEl("rect", { x: labelW, y: yTop + 3, width: Math.max(width, 1), height: rowH - 6, class: "bar" });
    bar.append(svgEl("title", {}, `${item.label}: ${fmt.format(item.value)} ${valueName}`));
    svg.append(bar);
    svg.append(svgEl("text", { x: labelW + width + 6, y: yTop + 15, class: "value" }, fmt.format(item.value)));
  });
  container.append(svg);
}

const shortDay = (iso) => iso.slice(5); // 2026-11-29 -> 11-29
const hourLabel = (iso) => `${iso.slice(11, 13)}h`;

function bucketLabel(b) {
  if (b.low === 0 && b.high === 1) return "0";
  return b.high === null ? `${fmt.format(b.low)}+` : `${fmt.format(b.low)}–${fmt.format(b.high - 1)}`;
}

function kpi(label, value) {
  const box = document.createElement("div");
  box.className = "kpi";
  const v = document.createElement("div");
  v.className = "value";
  v.textContent = fmt.format(value);
  const l = document.createElement("div");
  l.className = "label";
  l.textContent = label;
  box.append(v, l);
  return box;
}

async function loadAnalytics() {
  const days = $("analytics-days").value;
  const data = await api(`/api/admin/analytics?days=${days}`);
  const total = data.daily.reduce((sum, d) => sum + d.completions, 0);
  $("kpis").replaceChildren(
    kpi("players", data.players),
    kpi("active today (DAU)", data.dailyActivePlayers),
    kpi("active over 7 days (WAU)", data.weeklyActivePlayers),
    kpi(`completions, ${data.days} days`, total),
    kpi("live connections now", data.live.total),
    kpi("banned", data.bannedPlayers),
  );
  lineChart(
    $("chart-hourly"),
    data.hourly.map((h) => hourLabel(h.hour)),
    data.hourly.map((h) => h.completions),
    { labelEvery: 6, valueName: "completions" },
  );
  const dayLabels = data.daily.map((d) => shortDay(d.day));
  const every = Math.max(1, Math.ceil(data.daily.length / 10));
  barChart($("chart-daily"), dayLabels, data.daily.map((d) => d.completions), {
    second: data.daily.map((d) => d.activePlayers),
    labelEvery: every,
    valueName: "completions",
    secondName: "active players",
  });
  rankChart(
    $("chart-actions"),
    data.popularActions.map((a) => ({ label: a.name, value: a.completions })),
    "completions",
  );
  barChart($("chart-scores"), data.scoreDistribution.map(bucketLabel), data.scoreDistribution.map((b) => b.players), {
    valueName: "players",
  });
  barChart($("chart-registrations"), dayLabels, data.daily.map((d) => d.registrations), {
    labelEvery: every,
    valueName: "registrations",
  });
  rankChart(
    $("chart-live"),
    data.live.nodes.map((n) => ({ label: n.nodeId, value: n.connections })),
    "connections",
  );
}

// ---------------------------------------------------------------- wiring

$("login-form").addEventListener("submit", signIn);
$("logout").addEventListener("click", signOut);
for (const tab of document.querySelectorAll("[role=tab]")) {
  tab.addEventListener("click", () => selectTab(tab.dataset.tab));
}
$("search-form").addEventListener("submit", search);
$("adjust").addEventListener("click", adjust);
$("ban").addEventListener("click", () => setBan(true));
$("unban").addEventListener("click", () => setBan(false));
$("board-form").addEventListener("submit", saveBoard);
$("board-cancel").addEventListener("click", resetBoardForm);
$("action-form").addEventListener("submit", saveAction);
$("action-cancel").addEventListener("click", resetActionForm);
$("audit-reload").addEventListener("click", () => attempt(() => loadAudit(true)));
$("audit-more").addEventListener("click", () => attempt(() => loadAudit(false)));
$("analytics-days").addEventListener("change", () => attempt(loadAnalytics));

// A reload keeps the session of this tab: the refresh token gives a new access token.
if (state.refreshToken) {
  refreshTokens().then((ok) => (ok ? attempt(enter) : signOut()));
}
