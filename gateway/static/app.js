// The voice chat page: microphone -> /ws -> transcripts, replies and queued reply audio.
// The page keeps the chat history itself and sends it with every startSession, so a
// reconnect (after a lost connection or a settings change) continues the conversation.
import { Mic, Player } from "./audio.js";

const $ = (id) => document.getElementById(id);
const app = $("app");
const logEl = $("log");
const SETTINGS_KEY = "koe.settings";

const settings = loadSettings();
const history = []; // [{role, content}], user and assistant only
let ws = null;
let retries = 0;
let reconnectTimer = 0;
let ctx = null;
let player = null;
let mic = null;
let userSpeaking = false;
let pending = false; // a turn is being worked on: we owe the user a reply
let turn = null; // {assistant: {entry, el}} of the turn in flight
const alerts = new Map(); // kind -> message; the newest is shown

// -- settings ---------------------------------------------------------------
function loadSettings() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(SETTINGS_KEY)) || {};
  } catch {
    // unreadable or blocked storage: start from defaults
  }
  const fromUrl = new URLSearchParams(location.search).get("token");
  return { voice: "", language: "", systemPrompt: "", token: "", ...saved, ...(fromUrl ? { token: fromUrl } : {}) };
}

function saveSettings() {
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
  } catch {
    // private mode: settings last for this page only
  }
}

function authHeaders() {
  return settings.token ? { Authorization: `Bearer ${settings.token}` } : {};
}

async function loadVoices() {
  const select = $("voice");
  const text = $("voice-text");
  const note = $("voice-note");
  try {
    const r = await fetch("voices", { headers: authHeaders() });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const data = await r.json();
    select.replaceChildren(new Option(`Server default`, ""));
    for (const v of data.voices) {
      const langs = v.languages?.length ? `, ${v.languages.join("/")}` : "";
      select.add(new Option(`${v.id} (${v.backend}${langs})`, v.id));
    }
    if (settings.voice && !data.voices.some((v) => v.id === settings.voice)) {
      select.add(new Option(`${settings.voice} (not offered now)`, settings.voice));
    }
    select.value = settings.voice;
    select.hidden = false;
    text.hidden = true;
    $("voice-label").htmlFor = "voice";
    note.textContent = "";
  } catch (err) {
    // No list (TTS down, old gateway): a free-text voice id still works.
    select.hidden = true;
    text.hidden = false;
    text.value = settings.voice;
    $("voice-label").htmlFor = "voice-text";
    note.textContent = `The voice list is unavailable (${err.message}); type a voice id.`;
  }
}

function fillSettingsForm() {
  $("language").value = settings.language;
  $("system-prompt").value = settings.systemPrompt;
  $("token").value = settings.token;
}

function applySettings(event) {
  event.preventDefault();
  const voice = $("voice").hidden ? $("voice-text").value.trim() : $("voice").value;
  const tokenChanged = $("token").value !== settings.token;
  Object.assign(settings, {
    voice,
    language: $("language").value,
    systemPrompt: $("system-prompt").value.trim(),
    token: $("token").value,
  });
  saveSettings();
  if (tokenChanged) loadVoices();
  // Voice, prompt and language are startSession fields: they take effect on a new session.
  connect();
  addNotice("Settings applied.");
}

// -- connection -------------------------------------------------------------
function wsUrl() {
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (settings.token) url.searchParams.set("token", settings.token);
  return url;
}

function startSession() {
  const event = { event: "startSession", messages: history, streamAudio: true };
  if (settings.voice) event.voice = settings.voice;
  if (settings.systemPrompt) event.systemPrompt = settings.systemPrompt;
  if (settings.language) event.language = settings.language;
  return event;
}

function connect() {
  clearTimeout(reconnectTimer);
  const old = ws;
  const socket = new WebSocket(wsUrl());
  ws = socket; // set first: the old socket's close handler then knows it was replaced
  old?.close();
  setConnection("connecting", "Connecting…");
  socket.onopen = () => {
    socket.send(JSON.stringify(startSession()));
    retries = 0;
    clearAlert("connection");
    setConnection("connected", "Connected");
  };
  socket.onmessage = (e) => {
    if (socket === ws) onEvent(JSON.parse(e.data));
  };
  socket.onclose = (e) => {
    if (socket !== ws) return;
    ws = null;
    pending = userSpeaking = false;
    // Exponential backoff with jitter, so a restarted server is not hit by every tab at once.
    const delay = Math.min(15000, 500 * 2 ** retries++) * (0.8 + Math.random() * 0.4);
    const seconds = Math.max(1, Math.round(delay / 1000));
    if (e.code === 1008) {
      showAlert("connection", `The server refused the connection (${e.reason || "policy"}). ` +
        "If it needs an access token, enter it under Settings.");
    } else if (retries > 1) {
      showAlert("connection", "The connection to the server was lost. Replies will resume once it is back.");
    }
    setConnection("lost", `Connection lost — reconnecting in ${seconds} s`);
    reconnectTimer = setTimeout(connect, delay);
    render();
  };
}

function send(event) {
  if (ws?.readyState !== WebSocket.OPEN) return false;
  ws.send(typeof event === "string" || event instanceof ArrayBuffer ? event : JSON.stringify(event));
  return true;
}

function setConnection(state, label) {
  app.dataset.connection = state;
  $("connection").textContent = label;
}

// -- server events ----------------------------------------------------------
const TURN_EVENTS = ["assistantMessageGenerated", "assistantSpeechGenerated", "turnMetrics", "error"];

function onEvent(ev) {
  // The new turn has spoken up: any interruption from now on is about it.
  if (turn && TURN_EVENTS.includes(ev.event)) turn.previous = null;
  switch (ev.event) {
    case "userSpeechStart":
      userSpeaking = true;
      break;
    case "userSpeechEnd":
      userSpeaking = false;
      // Short speech over the assistant is a backchannel, not a new turn (server's rule).
      if (!player?.active) pending = true;
      break;
    case "userSpeechTranscript":
      turn = { assistant: null, user: addMessage("user", ev.transcript) };
      pending = true;
      break;
    case "assistantMessageGenerated":
      turn ??= { assistant: null, user: null };
      if (ev.generatedMessageContent) turn.assistant = addMessage("assistant", ev.generatedMessageContent);
      break;
    case "assistantSpeechGenerated":
      ensureAudio();
      player.enqueue(Uint8Array.from(ev.audioData));
      break;
    case "assistantSpeechInterrupted":
      player?.stop();
      onInterrupted(ev.spokenContent || "");
      break;
    case "turnMetrics":
      pending = false;
      if (turn?.assistant) turn.assistant.el.append(metricsLine(ev));
      break;
    case "error":
      pending = false;
      addNotice(`${ev.stage === "protocol" ? "Request" : (ev.stage || "server").toUpperCase()} error: ${ev.message}`, "error");
      break;
    default:
      return; // unknown events are ignored, as the protocol promises
  }
  render();
}

function onInterrupted(spoken) {
  // A typed message starts its turn here before the server's interruption of the previous
  // reply arrives: that event is about the previous turn then.
  const target = turn && !turn.assistant && turn.previous ? turn.previous : turn;
  if (target === turn) pending = false;
  // Keep what the user actually heard, as the server does in its own history.
  const a = target?.assistant;
  if (a) {
    a.entry.content = spoken;
    if (!spoken) history.splice(history.indexOf(a.entry), 1);
    a.el.querySelector(".text").textContent = spoken || "…";
  } else if (spoken && target) {
    target.assistant = addMessage("assistant", spoken, target.user);
  }
  if (target?.assistant) {
    target.assistant.el.classList.add("interrupted");
    target.assistant.el.append(meta("interrupted"));
  }
  if (target === turn) turn = null;
  else if (turn) turn.previous = null;
}

function meta(text) {
  return Object.assign(document.createElement("p"), { className: "meta", textContent: text });
}

function metricsLine(m) {
  const fmt = (ms) => (ms == null ? null : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);
  const parts = [
    ["transcript", m.transcriptMs],
    ["first token", m.firstTokenMs],
    ["first audio", m.firstAudioMs],
    ["total", m.totalMs],
  ].filter(([, ms]) => ms != null).map(([name, ms]) => `${name} ${fmt(ms)}`);
  const p = document.createElement("p");
  p.className = "meta metrics";
  p.title = "Latency from the end of your speech (or your typed message)";
  p.textContent = parts.join(" · ");
  return p;
}

// -- the log ----------------------------------------------------------------
function addMessage(role, content, after = null) {
  const entry = { role, content };
  const el = document.createElement("li");
  el.className = `msg ${role}`;
  const who = Object.assign(document.createElement("span"), {
    className: "who",
    textContent: role === "user" ? "You" : "Assistant",
  });
  const text = Object.assign(document.createElement("p"), { className: "text", textContent: content });
  el.append(who, text);
  if (after) {
    history.splice(history.indexOf(after.entry) + 1, 0, entry);
    after.el.after(el);
  } else {
    history.push(entry);
    logEl.append(el);
  }
  el.scrollIntoView({ block: "end", behavior: "smooth" });
  return { entry, el };
}

function addNotice(message, kind = "info") {
  const el = Object.assign(document.createElement("li"), { className: `notice ${kind}`, textContent: message });
  logEl.append(el);
  el.scrollIntoView({ block: "end" });
}

function showAlert(kind, message) {
  alerts.set(kind, message);
  const el = $("alert");
  el.textContent = message;
  el.hidden = false;
}

function clearAlert(kind) {
  alerts.delete(kind);
  const el = $("alert");
  const rest = [...alerts.values()];
  el.textContent = rest.at(-1) ?? "";
  el.hidden = rest.length === 0;
}

// -- audio ------------------------------------------------------------------
function ensureAudio() {
  // Created on the first click: browsers start an AudioContext made earlier suspended.
  if (!ctx) {
    ctx = new AudioContext({ latencyHint: "interactive" });
    player = new Player(ctx, render);
  }
  if (ctx.state === "suspended") ctx.resume();
}

function onFrame(pcm, level) {
  $("level").value = Math.min(1, level * 4);
  send(pcm); // dropped while disconnected: stale speech would only confuse the VAD later
}

function micError(err) {
  switch (err.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was denied. Allow it for this site in the browser's settings, then press Start again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Connect one and press Start again.";
    case "NotReadableError":
      return "The microphone is in use by another program or could not be opened.";
    case "InsecureContext":
      return "The browser only allows the microphone on https:// pages or on http://localhost. Open the page that way.";
    default:
      return `The microphone could not be started: ${err.message || err.name}`;
  }
}

async function toggleMic() {
  if (mic) {
    mic.stop();
    mic = null;
    userSpeaking = false;
    $("level").value = 0;
    render();
    return;
  }
  ensureAudio();
  const m = new Mic(ctx, onFrame);
  mic = m;
  render();
  try {
    await m.start();
    m.stream.getAudioTracks()[0].onended = () => {
      showAlert("mic", "The microphone stopped (unplugged or revoked).");
      if (mic === m) toggleMic();
    };
    clearAlert("mic");
  } catch (err) {
    m.stop();
    if (mic === m) mic = null;
    showAlert("mic", micError(err));
  }
  render();
}

// -- state ------------------------------------------------------------------
const STATES = {
  speaking: "Speaking…",
  thinking: "Thinking…",
  hearing: "Listening — hearing you",
  listening: "Listening",
  idle: "Microphone off",
};

function render() {
  let state = "idle";
  if (player?.active) state = "speaking";
  else if (pending) state = "thinking";
  else if (mic && userSpeaking) state = "hearing";
  else if (mic) state = "listening";
  if (app.dataset.state !== state) {
    app.dataset.state = state; // only on change, so screen readers do not repeat it
    $("state").textContent = STATES[state];
  }
  const button = $("mic");
  button.textContent = mic ? "Stop microphone" : "Start microphone";
  button.setAttribute("aria-pressed", String(Boolean(mic)));
  if (player) {
    app.dataset.chunksScheduled = player.scheduled;
    app.dataset.chunksPlayed = player.played;
  }
}

// -- wiring -----------------------------------------------------------------
$("mic").addEventListener("click", toggleMic);
$("typed").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("typed-text");
  const message = input.value.trim();
  if (!message) return;
  ensureAudio();
  if (!send({ event: "userMessage", message })) {
    addNotice("Not connected; the message was not sent.", "error");
    return;
  }
  const previous = pending || player.active ? turn : null; // the reply being interrupted
  player.stop(); // a new turn interrupts the reply; stop hearing it now, not a round trip later
  input.value = "";
  turn = { assistant: null, previous, user: addMessage("user", message) };
  pending = true;
  render();
});
$("settings").addEventListener("submit", applySettings);
$("clear").addEventListener("click", () => {
  history.length = 0;
  turn = null;
  pending = false;
  player?.stop();
  logEl.replaceChildren();
  connect();
});

fillSettingsForm();
loadVoices();
connect();
render();
