// The live leaderboard page: plain modern JavaScript, no build step.
//
// Tokens: the access token lives only in memory; the refresh token in sessionStorage, which
// only this origin can read (and only this tab). Live updates come over the WebSocket; while
// it is down the page polls GET /api/leaderboard so the board still moves.

const LIVE_PATH = "/api/leaderboard/live";
const BACKOFF_SECONDS = [1, 2, 4, 8, 16, 30];
const POLL_MS = 5000;
const HIGHLIGHT_MS = 1600;
const CLOSE = {
  GOING_AWAY: 1001,
  UNAUTHORIZED: 4001,
  TOKEN_EXPIRED: 4002,
  REPLACED: 4005,
};

const $ = (id) => document.getElementById(id);

const state = {
  accessToken: null,
  refreshToken: sessionStorage.getItem("refreshToken"),
  user: null,
  board: null, // {epoch, version, users, updatedAt}
  socket: null,
  attempt: 0,
  reconnectTimer: null,
  countdownTimer: null,
  pollTimer: null,
  refreshing: null,
  rateLimitTimer: null,
  completions: new Map(),
  actions: [],
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

async function request(path, { method = "GET", body, auth = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && state.accessToken) headers.Authorization = `Bearer ${state.accessToken}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, { code: "NETWORK", message: "The server cannot be reached. Check your connection." });
  }
  const payload = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, payload?.error);
  return payload;
}

// An authenticated call: on TOKEN_EXPIRED refresh once and retry; on UNAUTHORIZED sign out.
async function authed(path, options = {}) {
  try {
    return await request(path, { ...options, auth: true });
  } catch (error) {
    if (error.code === "TOKEN_EXPIRED" && (await refreshTokens())) {
      return request(path, { ...options, auth: true }).catch(handleAuthFailure);
    }
    return handleAuthFailure(error);
  }
}

function handleAuthFailure(error) {
  if (error.status === 401) signOut("Your session has ended. Please log in again.");
  throw error;
}

// One refresh at a time: a refresh token works once, so two parallel refreshes would look
// like theft to the server and end the session.
function refreshTokens() {
  if (!state.refreshToken) return Promise.resolve(false);
  state.refreshing ??= request("/api/auth/refresh", { method: "POST", body: { refreshToken: state.refreshToken } })
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
  sessionStorage.setItem("refreshToken", tokens.refreshToken);
}

// ---------------------------------------------------------------- the board

function applyBoard(next) {
  const current = state.board;
  if (current && current.epoch === next.epoch && next.version <= current.version) return;
  state.board = next;
  renderBoard(current?.users || null, next.users);
  $("updated-at").textContent = next.updatedAt ? new Date(next.updatedAt).toLocaleTimeString() : "—";
  if (next.updatedAt) $("updated-at").dateTime = next.updatedAt;
  const mine = next.users.find((u) => u.userId === state.user?.userId);
  if (mine) renderStanding(mine.score, mine.rank);
}

function renderBoard(previous, users) {
  const body = $("board-rows");
  const before = new Map((previous || []).map((u) => [u.userId, u]));
  const announcements = [];
  const rows = users.map((user) => {
    const row = document.createElement("tr");
    row.dataset.userId = user.userId;
    if (user.userId === state.user?.userId) row.classList.add("mine");
    for (const [text, cls] of [[user.rank, "rank"], [user.username, "name"], [user.score, "score"]]) {
      const cell = document.createElement("td");
      cell.className = cls;
      cell.textContent = String(text);
      row.append(cell);
    }
    const old = before.get(user.userId);
    if (previous && (!old || old.rank !== user.rank || old.score !== user.score)) {
      row.classList.add("changed");
      setTimeout(() => row.classList.remove("changed"), HIGHLIGHT_MS);
      announcements.push(`${user.username} is now rank ${user.rank} with ${user.score} points`);
    }
    return row;
  });
  if (rows.length === 0) {
    const row = document.createElement("tr");
    row.className = "empty";
    row.innerHTML = '<td colspan="3">No scores yet. Be the first!</td>';
    rows.push(row);
  }
  body.replaceChildren(...rows);
  if (announcements.length) $("board-announcer").textContent = announcements.slice(0, 3).join(". ");
}

async function pollBoard() {
  try {
    applyBoard(await request("/api/leaderboard"));
  } catch {
    // The next poll tries again; the connection badge already says we are not live.
  }
}

function startPolling() {
  if (state.pollTimer) return;
  pollBoard();
  state.pollTimer = setInterval(pollBoard, POLL_MS);
}

function stopPolling() {
  clearInterval(state.pollTimer);
  state.pollTimer = null;
}

// ---------------------------------------------------------------- the live connection

function setConnection(kind, text) {
  const badge = $("connection");
  badge.dataset.state = kind;
  badge.textContent = text;
}

function connectLive() {
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdownTimer);
  if (!state.accessToken) {
    setConnection("offline", "Offline · sign in for live updates");
    startPolling();
    return;
  }
  const url = new URL(LIVE_PATH, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  state.socket = socket;
  setConnection("connecting", "Connecting…");
  // The token goes in the first frame, not the URL, so it stays out of proxy logs.
  socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "AUTH", token: state.accessToken })));
  socket.addEventListener("message", (event) => onLiveMessage(socket, event));
  socket.addEventListener("close", (event) => onLiveClose(socket, event));
}

function onLiveMessage(socket, event) {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    return;
  }
  if (message.type === "LEADERBOARD_UPDATE") {
    // The first message after (re)connecting is the full board; versions make re-sends harmless.
    state.attempt = 0;
    stopPolling();
    setConnection("live", "Live");
    applyBoard({ ...message.data, epoch: message.epoch, version: message.version });
  } else if (message.type === "PING") {
    socket.send(JSON.stringify({ type: "PONG" }));
  }
}

async function onLiveClose(socket, event) {
  if (state.socket !== socket) return; // an old socket we already replaced
  state.socket = null;
  if (!state.accessToken) return; // signed out on purpose
  if (event.code === CLOSE.TOKEN_EXPIRED || event.code === CLOSE.UNAUTHORIZED) {
    if (await refreshTokens()) {
      connectLive();
      return;
    }
    if (event.code === CLOSE.UNAUTHORIZED) {
      signOut("Your session has ended. Please log in again.");
      return;
    }
  }
  if (event.code === CLOSE.REPLACED) {
    setConnection("offline", "Offline · live updates moved to your newer tab");
    startPolling();
    return;
  }
  scheduleReconnect();
}

function scheduleReconnect() {
  startPolling();
  const base = BACKOFF_SECONDS[Math.min(state.attempt, BACKOFF_SECONDS.length - 1)];
  state.attempt += 1;
  // Jitter spreads the reconnects of many clients after a server restart.
  const delay = Math.min(30, base * (0.8 + Math.random() * 0.4));
  let remaining = Math.ceil(delay);
  const show = () => setConnection("reconnecting", `Reconnecting in ${remaining} s`);
  show();
  clearInterval(state.countdownTimer);
  state.countdownTimer = setInterval(() => {
    remaining = Math.max(0, remaining - 1);
    show();
  }, 1000);
  state.reconnectTimer = setTimeout(connectLive, delay * 1000);
}

// ---------------------------------------------------------------- account

async function onAuthSubmit(event) {
  event.preventDefault();
  const mode = event.submitter?.dataset.mode || "login";
  const username = $("username").value.trim();
  const password = $("password").value;
  const message = $("auth-message");
  if (!/^[A-Za-z0-9_.-]{3,50}$/.test(username)) {
    message.textContent = "A username is 3–50 letters, digits, '_', '.' or '-'.";
    $("username").focus();
    return;
  }
  if (password.length < 8) {
    message.textContent = "A password has at least 8 characters.";
    $("password").focus();
    return;
  }
  message.textContent = mode === "register" ? "Creating your account…" : "Logging in…";
  try {
    if (mode === "register") await request("/api/auth/register", { method: "POST", body: { username, password } });
    adoptTokens(await request("/api/auth/login", { method: "POST", body: { username, password } }));
    message.textContent = "";
    $("password").value = "";
    await enterSignedIn();
  } catch (error) {
    message.textContent = error.code === "RATE_LIMIT_EXCEEDED"
      ? `Too many attempts. Try again in ${error.details.retryAfter} s.`
      : error.message;
  }
}

async function enterSignedIn() {
  $("signed-out").hidden = true;
  $("signed-in").hidden = false;
  $("me-name").textContent = state.user.username;
  state.socket?.close(1000);
  stopPolling();
  connectLive();
  await Promise.all([loadActions(), loadMe()]);
  if (state.board) renderBoard(null, state.board.users); // mark our own row
  $("logout-button").focus();
}

function signOut(reason = "") {
  state.accessToken = null;
  state.refreshToken = null;
  state.user = null;
  sessionStorage.removeItem("refreshToken");
  const socket = state.socket;
  state.socket = null;
  socket?.close(1000);
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdownTimer);
  $("signed-in").hidden = true;
  $("signed-out").hidden = false;
  $("auth-message").textContent = reason;
  connectLive();
  if (state.board) renderBoard(null, state.board.users);
}

// ---------------------------------------------------------------- actions

async function loadActions() {
  const { actions } = await request("/api/actions");
  state.actions = actions;
  renderActions();
}

async function loadMe() {
  const me = await authed("/api/me");
  state.completions = new Map(me.completions.map((c) => [c.actionId, c]));
  renderStanding(me.score, me.rank);
  renderActions();
}

function renderStanding(score, rank) {
  $("me-score").textContent = String(score);
  $("me-rank").textContent = rank ? `#${rank}` : "—";
}

function renderActions() {
  const list = $("actions");
  list.replaceChildren(
    ...state.actions.map((action) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.actionId = action.actionId;
      const done = state.completions.get(action.actionId);
      const label = document.createElement("span");
      label.textContent = action.name;
      const points = document.createElement("span");
      points.className = "points";
      points.textContent = done ? (action.repeat === "daily" ? "✓ Done today" : "✓ Done") : `+${action.points}`;
      button.append(label, points);
      button.disabled = Boolean(done) || Boolean(state.rateLimitTimer);
      if (done) button.classList.add("done");
      button.title = action.description || action.name;
      button.addEventListener("click", () => completeAction(action, button));
      item.append(button);
      return item;
    }),
  );
}

async function completeAction(action, button) {
  const message = $("action-message");
  button.disabled = true;
  try {
    const result = await authed("/api/action/complete", { method: "POST", body: { actionId: action.actionId } });
    state.completions.set(action.actionId, { actionId: action.actionId, pointsEarned: result.pointsEarned });
    renderStanding(result.newScore, result.rank);
    message.dataset.kind = "success";
    message.textContent = `+${result.pointsEarned} points for “${action.name}”. You are rank ${result.rank}.`;
  } catch (error) {
    message.dataset.kind = "error";
    if (error.code === "ALREADY_COMPLETED") {
      state.completions.set(action.actionId, error.details);
      const when = error.details.completedAt ? new Date(error.details.completedAt).toLocaleString() : "earlier";
      message.textContent = `You already completed “${action.name}” (${when}).`;
    } else if (error.code === "RATE_LIMIT_EXCEEDED") {
      startRateLimitCountdown(error.details.retryAfter);
    } else if (error.code === "INVALID_ACTION") {
      message.textContent = `“${action.name}” is no longer available.`;
      await loadActions().catch(() => {});
    } else if (error.status !== 401) {
      message.textContent = error.message;
    }
  }
  renderActions(); // disabled everywhere while a rate-limit countdown runs
}

// The countdown has its own line, so results of requests still in flight cannot hide it.
function startRateLimitCountdown(seconds) {
  const message = $("rate-limit-message");
  let remaining = Math.max(1, Number(seconds) || 1);
  const show = () => {
    message.dataset.kind = "error";
    message.textContent = `Slow down! You can score again in ${remaining} s.`;
  };
  clearInterval(state.rateLimitTimer);
  show();
  state.rateLimitTimer = setInterval(() => {
    remaining -= 1;
    if (remaining > 0) return show();
    clearInterval(state.rateLimitTimer);
    state.rateLimitTimer = null;
    message.textContent = "";
    renderActions();
  }, 1000);
  renderActions();
}

// ---------------------------------------------------------------- start

async function start() {
  $("auth-form").addEventListener("submit", onAuthSubmit);
  $("logout-button").addEventListener("click", () => signOut());
  window.addEventListener("online", () => {
    if (!state.socket && state.accessToken) connectLive();
  });
  await pollBoard();
  if (state.refreshToken && (await refreshTokens())) {
    await enterSignedIn();
  } else {
    sessionStorage.removeItem("refreshToken");
    state.refreshToken = null;
    connectLive();
  }
}

start();
