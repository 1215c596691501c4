// The live leaderboard page: plain modern JavaScript, no build step.
//
// Tokens: the access token lives only in memory; the refresh token in sessionStorage, which
// only this origin can read (and only this tab). Live updates come over the WebSocket, for the
// board on show; while it is down (or for a signed-out visitor) the page polls
// GET /api/leaderboard so the board still moves.

const LIVE_PATH = "/api/leaderboard/live";
const ALL_TIME = "all-time";
const BACKOFF_SECONDS = [1, 2, 4, 8, 16, 30];
const POLL_MS = 5000;
const HIGHLIGHT_MS = 1600;
const TOTAL_EVERY_MS = 10000; // the ranked-player count is refreshed at most this often
const AROUND_EVERY_MS = 2000; // and the "around me" rows
const CLOSE = {
  GOING_AWAY: 1001,
  UNAUTHORIZED: 4001,
  TOKEN_EXPIRED: 4002,
  REPLACED: 4005,
  // From the sessions work (issue 13): every session of the account ended (logout-all, a
  // deleted account), or the account is banned. Either way: back to the login form.
  SESSION_ENDED: 4006,
  ACCOUNT_BANNED: 4007,
};

const $ = (id) => document.getElementById(id);
// Actions a game server proves (a signed receipt) or awards itself: the page shows them as
// "earned in game" and never offers to complete them.
const EARNED_IN_GAME = new Set(["receipt", "server"]);
const LOGOUT_WAIT_MS = 5000; // the page returns to the login form by then, whatever the answer

const state = {
  accessToken: null,
  refreshToken: sessionStorage.getItem("refreshToken"),
  user: null,
  boards: [], // GET /api/boards: the boards counting now, with their current period
  selected: ALL_TIME, // the board on show
  archived: null, // a past period on show (no live updates), or null for the current one
  board: null, // {board, period, epoch, version, users, updatedAt}
  total: null,
  totalAt: 0,
  aroundAt: 0,
  aroundTimer: null,
  standingRank: null, // the all-time rank shown under "Your rank"
  socket: null,
  attempt: 0,
  reconnectTimer: null,
  countdownTimer: null,
  pollTimer: null,
  clockTimer: null,
  refreshing: null,
  rateLimitTimer: null,
  completions: new Map(),
  actions: [],
  quizAction: null, // the quiz open in the quiz form
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
  else if (error.code === "ACCOUNT_BANNED") signOut("This account has been suspended.");
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

// The query naming the board (and period) on show; the plain read for the all-time board,
// which the server answers fastest.
function boardQuery(extra = {}) {
  const params = new URLSearchParams();
  if (state.selected !== ALL_TIME || state.archived || Object.keys(extra).length) params.set("board", state.selected);
  if (state.archived) params.set("period", state.archived);
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  const query = params.toString();
  return query ? `/api/leaderboard?${query}` : "/api/leaderboard";
}

// ---------------------------------------------------------------- the boards

const BOARD_LABELS = { "all-time": "All time", daily: "Today", weekly: "This week", monthly: "This month" };

function boardLabel(board) {
  return BOARD_LABELS[board.boardId] || board.name;
}

async function loadBoards() {
  try {
    state.boards = (await request("/api/boards")).boards;
  } catch {
    return; // the tabs keep what they had; the next refresh tries again
  }
  if (!state.boards.some((b) => b.boardId === state.selected)) state.selected = ALL_TIME;
  renderTabs();
  renderPeriodInfo();
}

function currentBoard() {
  return state.boards.find((b) => b.boardId === state.selected) || null;
}

function renderTabs() {
  const tabs = $("board-tabs");
  tabs.replaceChildren(
    ...state.boards.map((board) => {
      const tab = document.createElement("button");
      tab.type = "button";
      tab.className = "tab";
      tab.setAttribute("role", "tab");
      tab.dataset.boardId = board.boardId;
      tab.textContent = boardLabel(board);
      const selected = board.boardId === state.selected;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      tab.addEventListener("click", () => selectBoard(board.boardId));
      return tab;
    }),
  );
}

function onTabKey(event) {
  const keys = { ArrowRight: 1, ArrowLeft: -1 };
  if (!(event.key in keys)) return;
  const index = state.boards.findIndex((b) => b.boardId === state.selected);
  const next = state.boards[(index + keys[event.key] + state.boards.length) % state.boards.length];
  if (next) {
    selectBoard(next.boardId);
    document.querySelector(`#board-tabs [data-board-id="${CSS.escape(next.boardId)}"]`)?.focus();
  }
}

async function selectBoard(boardId, period = null) {
  if (boardId === state.selected && period === state.archived) return;
  state.selected = boardId;
  state.archived = period;
  state.board = null;
  state.total = null;
  state.totalAt = 0;
  renderTabs();
  renderPeriodInfo();
  renderBoard(null, []);
  $("around-me").hidden = true;
  $("board-total").textContent = "";
  if (period === null) {
    subscribeLive();
    await Promise.all([loadPeriods(), pollBoard()]);
  } else {
    await pollBoard();
  }
}

function renderPeriodInfo() {
  const board = currentBoard();
  const info = $("period-info");
  if (!board) {
    info.textContent = "";
    return;
  }
  const label = boardLabel(board);
  $("board-title").textContent = label === "All time" ? "Top 10 · All time" : `Top 10 · ${label}`;
  if (state.archived) {
    info.textContent = `Past period ${state.archived}`;
  } else if (board.endsAt) {
    info.textContent = `${board.period} · ${timeLeft(new Date(board.endsAt) - Date.now())}`;
  } else {
    info.textContent = "Since the start";
  }
}

function timeLeft(ms) {
  if (ms <= 0) return "ending now";
  const minutes = Math.ceil(ms / 60000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  const parts = days ? [`${days} d`, `${hours} h`] : hours ? [`${hours} h`, `${mins} min`] : [`${mins} min`];
  return `ends in ${parts.join(" ")}`;
}

// Past periods of the board on show, newest first, in the period picker.
async function loadPeriods() {
  const picker = $("period-select");
  const boardId = state.selected;
  let periods = [];
  try {
    periods = (await request(`/api/boards/${encodeURIComponent(boardId)}/periods`)).periods;
  } catch {
    // No archive to offer right now; the current period still shows.
  }
  if (boardId !== state.selected) return; // the player switched again meanwhile
  const past = periods.filter((p) => !p.current);
  const current = document.createElement("option");
  current.value = "";
  current.textContent = "Current period";
  picker.replaceChildren(
    current,
    ...past.map((p) => {
      const option = document.createElement("option");
      option.value = p.period;
      option.textContent = p.period;
      return option;
    }),
  );
  picker.value = state.archived || "";
  $("periods").hidden = past.length === 0;
}

function onPeriodChange() {
  selectBoard(state.selected, $("period-select").value || null);
}

// ---------------------------------------------------------------- the board on show

// Messages of another board, or older than the one shown, are ignored; a later period (a
// rollover) or a new epoch is always taken.
function isNewer(next, current) {
  if (!current || current.board !== next.board) return true;
  if ((next.period || "") !== (current.period || "")) return (next.period || "") > (current.period || "");
  if (next.epoch !== current.epoch) return true;
  return next.version > current.version;
}

function applyBoard(next) {
  // Messages and reads from before boards existed name neither board nor period.
  next.board ||= ALL_TIME;
  if (next.board === ALL_TIME) next.period ||= "all";
  if (next.board !== state.selected) return;
  const current = state.board;
  if (!isNewer(next, current)) return;
  state.board = next;
  renderBoard(current?.users || null, next.users);
  $("updated-at").textContent = next.updatedAt ? new Date(next.updatedAt).toLocaleTimeString() : "—";
  if (next.updatedAt) $("updated-at").dateTime = next.updatedAt;
  if (current && next.period && current.period && next.period !== current.period) {
    loadBoards(); // a new period began: fetch its end, and offer the one that ended
    loadPeriods();
  }
  if (next.board === ALL_TIME && !state.archived) updateStandingFrom(current, next);
  refreshTotal();
  refreshAroundMe(next);
}

// "Your rank" is the all-time rank. From the top 10 when the player is in it; when they have
// just dropped out of it the rank is read again (it is no longer the one they had).
function updateStandingFrom(previous, next) {
  if (!state.user) return;
  const mine = next.users.find((u) => u.userId === state.user.userId);
  if (mine) {
    renderStanding(mine.score, mine.rank);
    return;
  }
  const wasShown = previous?.users.some((u) => u.userId === state.user.userId);
  if (wasShown || (state.standingRank !== null && state.standingRank <= next.users.length)) {
    loadMe().catch(() => {});
  }
}

function renderBoard(previous, users) {
  const body = $("board-rows");
  const before = new Map((previous || []).map((u) => [u.userId, u]));
  const announcements = [];
  const rows = users.map((user) => {
    const row = boardRow(user);
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
    const cell = document.createElement("td");
    cell.colSpan = 3;
    cell.textContent = state.archived ? "Nobody scored in this period." : "No scores yet. Be the first!";
    row.append(cell);
    rows.push(row);
  }
  body.replaceChildren(...rows);
  if (announcements.length) $("board-announcer").textContent = announcements.slice(0, 3).join(". ");
}

// One row: rank, the player's name (opens their profile), score.
function boardRow(user) {
  const row = document.createElement("tr");
  row.dataset.userId = user.userId;
  if (user.userId === state.user?.userId) row.classList.add("mine");
  const rank = document.createElement("td");
  rank.className = "rank";
  rank.textContent = String(user.rank);
  const name = document.createElement("td");
  name.className = "name";
  const link = document.createElement("button");
  link.type = "button";
  link.className = "player";
  link.textContent = user.username;
  link.addEventListener("click", () => showProfile(user.userId));
  name.append(link);
  const score = document.createElement("td");
  score.className = "score";
  score.textContent = String(user.score);
  row.append(rank, name, score);
  return row;
}

async function pollBoard() {
  const boardId = state.selected;
  const period = state.archived;
  try {
    const body = await request(boardQuery());
    if (boardId !== state.selected || period !== state.archived) return;
    applyBoard({ ...body });
  } catch (error) {
    if (error.code === "BOARD_NOT_FOUND") await selectBoard(ALL_TIME);
    // Otherwise the next poll tries again; the connection badge says we are not live.
  }
}

function startPolling() {
  if (state.pollTimer) return;
  pollBoard();
  state.pollTimer = setInterval(() => {
    if (!state.archived) pollBoard();
  }, POLL_MS);
}

function stopPolling() {
  clearInterval(state.pollTimer);
  state.pollTimer = null;
}

// The number of ranked players: a one-row page carries it.
async function refreshTotal(force = false) {
  if (!force && Date.now() - state.totalAt < TOTAL_EVERY_MS && state.total !== null) return;
  state.totalAt = Date.now();
  const boardId = state.selected;
  try {
    const page = await request(boardQuery({ limit: "1" }));
    if (boardId !== state.selected) return;
    state.total = page.total;
    $("board-total").textContent = `${page.total} ranked ${page.total === 1 ? "player" : "players"}`;
  } catch {
    // Keep the last count.
  }
}

// The signed-in player's own row and neighbours when they are outside the top 10 shown.
async function refreshAroundMe(board) {
  const panel = $("around-me");
  if (!state.user || !state.accessToken) {
    panel.hidden = true;
    return;
  }
  if (board.users.some((u) => u.userId === state.user.userId)) {
    panel.hidden = true;
    return;
  }
  // At most one read every AROUND_EVERY_MS, and always one after the last change.
  clearTimeout(state.aroundTimer);
  const wait = AROUND_EVERY_MS - (Date.now() - state.aroundAt);
  if (wait > 0) {
    state.aroundTimer = setTimeout(() => state.board && refreshAroundMe(state.board), wait);
    return;
  }
  state.aroundAt = Date.now();
  const boardId = state.selected;
  let around;
  try {
    around = await authed(boardQuery({ around: "me", radius: "2" }));
  } catch (error) {
    if (boardId !== state.selected) return;
    if (error.code === "NOT_RANKED") {
      panel.hidden = false;
      $("around-rows").replaceChildren();
      $("around-gap").textContent = "You have no points on this board yet.";
    }
    return;
  }
  if (boardId !== state.selected) return;
  const mine = around.users.find((u) => u.userId === state.user.userId);
  if (!mine || mine.rank <= 10) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  $("around-rows").replaceChildren(...around.users.map(boardRow));
  // The next rank up is the nearest row with more points: tying it shares its rank.
  const above = around.users.filter((u) => u.score > mine.score).pop();
  $("around-gap").textContent = above
    ? `${above.score - mine.score} points to rank ${above.rank}`
    : `You are rank ${mine.rank}.`;
}

// ---------------------------------------------------------------- profiles

async function showProfile(userId) {
  const dialog = $("profile");
  let profile;
  try {
    profile = await request(`/api/users/${encodeURIComponent(userId)}`);
  } catch (error) {
    $("board-announcer").textContent = error.message;
    return;
  }
  $("profile-name").textContent = profile.username;
  $("profile-since").textContent = `Playing since ${new Date(profile.createdAt).toLocaleDateString()}`;
  const names = new Map(state.boards.map((b) => [b.boardId, boardLabel(b)]));
  $("profile-boards").replaceChildren(
    ...profile.boards.map((b) => {
      const item = document.createElement("li");
      item.textContent = `${names.get(b.boardId) || b.boardId}: rank ${b.rank} · ${b.score} points`;
      return item;
    }),
  );
  if (!profile.boards.length) $("profile-boards").append(listItem("No points yet."));
  $("profile-recent").replaceChildren(
    ...profile.recent.map((c) => listItem(`${c.name} · +${c.pointsEarned} · ${new Date(c.completedAt).toLocaleString()}`)),
  );
  if (!profile.recent.length) $("profile-recent").append(listItem("Nothing completed yet."));
  if (!dialog.open) dialog.showModal();
}

function listItem(text) {
  const item = document.createElement("li");
  item.textContent = text;
  return item;
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
    // Live updates need an account; a visitor's board is read every few seconds instead.
    setConnection("polling", `Updates every ${POLL_MS / 1000} s`);
    startPolling();
    return;
  }
  const url = new URL(LIVE_PATH, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (state.selected !== ALL_TIME) url.searchParams.set("board", state.selected);
  const socket = new WebSocket(url);
  state.socket = socket;
  setConnection("connecting", "Connecting…");
  // The token goes in the first frame, not the URL, so it stays out of proxy logs.
  socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "AUTH", token: state.accessToken })));
  socket.addEventListener("message", (event) => onLiveMessage(socket, event));
  socket.addEventListener("close", (event) => onLiveClose(socket, event));
}

// Follow the board on show on the open socket (no reconnect).
function subscribeLive() {
  const socket = state.socket;
  if (socket && socket.readyState === WebSocket.OPEN && socket.live) {
    socket.send(JSON.stringify({ type: "SUBSCRIBE", board: state.selected }));
  }
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
    if (!socket.live) {
      socket.live = true;
      // The board on show may have changed while this socket was connecting.
      if ((message.board || ALL_TIME) !== state.selected) subscribeLive();
    }
    stopPolling();
    setConnection("live", "Live");
    if (!state.archived) {
      applyBoard({ ...message.data, board: message.board, period: message.period, epoch: message.epoch, version: message.version });
    }
  } else if (message.type === "PING") {
    socket.send(JSON.stringify({ type: "PONG" }));
  } else if (message.type === "ERROR" && message.code === "BOARD_NOT_FOUND") {
    selectBoard(ALL_TIME);
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
  if (event.code === CLOSE.SESSION_ENDED) {
    signOut("Your session has ended. Please log in again.");
    return;
  }
  if (event.code === CLOSE.ACCOUNT_BANNED) {
    signOut("This account has been suspended.");
    return;
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
  if (state.board) {
    renderBoard(null, state.board.users); // mark our own row
    refreshAroundMe(state.board);
  }
  $("logout-button").focus();
}

function signOut(reason = "") {
  state.accessToken = null;
  state.refreshToken = null;
  state.user = null;
  state.standingRank = null;
  sessionStorage.removeItem("refreshToken");
  const socket = state.socket;
  state.socket = null;
  socket?.close(1000);
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdownTimer);
  $("signed-in").hidden = true;
  $("signed-out").hidden = false;
  $("around-me").hidden = true;
  $("auth-message").textContent = reason;
  closeQuiz();
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
  state.standingRank = rank || null;
  $("me-score").textContent = String(score);
  $("me-rank").textContent = rank ? `#${rank}` : "—";
}

function renderActions() {
  const list = $("actions");
  // The buttons are rebuilt: a keyboard user keeps their focus on the same action.
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset.actionId : null;
  list.replaceChildren(
    ...state.actions.map((action) => {
      const item = document.createElement("li");
      const done = state.completions.get(action.actionId);
      const label = document.createElement("span");
      label.textContent = action.name;
      const points = document.createElement("span");
      points.className = "points";
      points.textContent = done ? (action.repeat === "daily" ? "✓ Done today" : "✓ Done") : `+${action.points}`;
      if (EARNED_IN_GAME.has(action.verification)) {
        // Not a button: only the game (its server) can award it.
        const earned = document.createElement("div");
        earned.className = "earned";
        earned.dataset.actionId = action.actionId;
        const kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = "earned in game";
        label.append(" ", kind);
        earned.append(label, points);
        if (done) earned.classList.add("done");
        earned.title = action.description || action.name;
        item.append(earned);
        return item;
      }
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.actionId = action.actionId;
      if (action.verification === "quiz") {
        const kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = "quiz";
        label.append(" ", kind);
        button.setAttribute("aria-haspopup", "dialog");
      }
      button.append(label, points);
      button.disabled = Boolean(done) || Boolean(state.rateLimitTimer);
      if (done) button.classList.add("done");
      button.title = action.description || action.name;
      button.addEventListener("click", () =>
        action.verification === "quiz" ? openQuiz(action) : completeAction(action, button),
      );
      item.append(button);
      return item;
    }),
  );
  if (focused) list.querySelector(`button[data-action-id="${CSS.escape(focused)}"]`)?.focus();
}

// Completes the action (with the proof its verification asks for, in `data`); returns the
// error code when it was refused, else null.
async function completeAction(action, button, data) {
  const message = $("action-message");
  if (button) button.disabled = true;
  const body = { actionId: action.actionId };
  if (data !== undefined) body.data = data;
  let refused = null;
  try {
    const result = await authed("/api/action/complete", { method: "POST", body });
    state.completions.set(action.actionId, { actionId: action.actionId, pointsEarned: result.pointsEarned });
    renderStanding(result.newScore, result.rank);
    message.dataset.kind = "success";
    message.textContent = `+${result.pointsEarned} points for “${action.name}”.` + (result.rank ? ` You are rank ${result.rank}.` : "");
    state.aroundAt = 0; // the player moved: their neighbours are worth a fresh read
    if (state.board) refreshAroundMe(state.board);
    refreshTotal(true); // one more ranked player, perhaps, though the top 10 did not move
  } catch (error) {
    refused = error.code;
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
    } else if (error.code === "VERIFICATION_FAILED" && action.verification === "quiz") {
      message.textContent = `Not quite: some answers to “${action.name}” are wrong.`;
    } else if (error.code === "SERVER_ONLY_ACTION") {
      message.textContent = `“${action.name}” is earned in game.`;
      await loadActions().catch(() => {}); // the catalog changed: show it as such
    } else if (error.status !== 401) {
      message.textContent = error.message;
    }
  }
  renderActions(); // disabled everywhere while a rate-limit countdown runs
  return refused;
}

// ---------------------------------------------------------------- quizzes

function openQuiz(action) {
  state.quizAction = action;
  $("quiz-title").textContent = action.name;
  $("quiz-message").textContent = "";
  $("quiz-submit").disabled = false;
  $("quiz-questions").replaceChildren(
    ...action.questions.flatMap((question, index) => {
      const label = document.createElement("label");
      label.htmlFor = `quiz-answer-${index}`;
      label.textContent = question;
      const input = document.createElement("input");
      input.id = `quiz-answer-${index}`;
      input.name = "answer";
      input.autocomplete = "off";
      input.maxLength = 200;
      input.required = true;
      return [label, input];
    }),
  );
  const dialog = $("quiz");
  if (!dialog.open) dialog.showModal();
  $("quiz-answer-0")?.focus();
}

async function onQuizSubmit(event) {
  event.preventDefault();
  const action = state.quizAction;
  if (!action) return;
  const inputs = [...$("quiz-questions").querySelectorAll("input")];
  const answers = inputs.map((input) => input.value);
  const blank = inputs.find((input) => !input.value.trim());
  if (blank) {
    $("quiz-message").textContent = "Answer every question.";
    blank.focus();
    return;
  }
  $("quiz-submit").disabled = true;
  $("quiz-message").textContent = "Checking…";
  const refused = await completeAction(action, null, { answers });
  if (refused === "VERIFICATION_FAILED") {
    // Stay open for another try (each try counts against the rate limit, as any completion).
    $("quiz-message").textContent = "Not quite: at least one answer is wrong. Try again.";
    $("quiz-submit").disabled = false;
    inputs[0]?.focus();
    return;
  }
  closeQuiz();
}

function closeQuiz() {
  state.quizAction = null;
  if ($("quiz").open) $("quiz").close();
}

// ---------------------------------------------------------------- logging out

// A request that may fail or hang: the page goes on after it settles or after LOGOUT_WAIT_MS.
function settleWithin(promise, ms) {
  return Promise.race([promise.catch(() => {}), new Promise((resolve) => setTimeout(resolve, ms))]);
}

// "Log out": the server ends this session (its refresh-token family); the page returns to the
// login form whatever the answer.
async function logOut() {
  const refreshToken = state.refreshToken;
  setLogoutButtonsDisabled(true);
  if (refreshToken) {
    await settleWithin(request("/api/auth/logout", { method: "POST", body: { refreshToken } }), LOGOUT_WAIT_MS);
  }
  setLogoutButtonsDisabled(false);
  signOut();
}

// "Log out everywhere": every session of this account ends, on every device.
async function logOutEverywhere() {
  setLogoutButtonsDisabled(true);
  // authed(): an expired access token is refreshed first, so the request still counts.
  await settleWithin(authed("/api/auth/logout-all", { method: "POST" }), LOGOUT_WAIT_MS);
  setLogoutButtonsDisabled(false);
  signOut("You have been logged out on every device.");
}

function setLogoutButtonsDisabled(disabled) {
  $("logout-button").disabled = disabled;
  $("logout-all-button").disabled = disabled;
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
  $("logout-button").addEventListener("click", logOut);
  $("logout-all-button").addEventListener("click", logOutEverywhere);
  $("quiz-form").addEventListener("submit", onQuizSubmit);
  $("quiz-cancel").addEventListener("click", closeQuiz);
  $("board-tabs").addEventListener("keydown", onTabKey);
  $("period-select").addEventListener("change", onPeriodChange);
  $("profile-close").addEventListener("click", () => $("profile").close());
  window.addEventListener("online", () => {
    if (!state.socket && state.accessToken) connectLive();
  });
  // The time left ticks down; at a boundary the live rollover message brings the new period.
  // New tournaments appear with the boards list, read again now and then.
  let ticks = 0;
  state.clockTimer = setInterval(() => {
    ticks += 1;
    if (ticks % 4 === 0) loadBoards();
    else renderPeriodInfo();
  }, 15000);
  await Promise.all([loadBoards(), pollBoard()]);
  loadPeriods();
  refreshTotal(true);
  if (state.refreshToken && (await refreshTokens())) {
    await enterSignedIn();
  } else {
    sessionStorage.removeItem("refreshToken");
    state.refreshToken = null;
    connectLive();
  }
}

start();
