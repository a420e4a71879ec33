// codex-notebook: the view of one turn (anywidget ESM).
//
// Durable state comes from two traits, `header` and `blocks` (the typed block
// schema of notebook/blocks.py, as JSON).  Changes arrive as custom messages:
//   {type: "append", block, offset, text}            streamed text (UTF-16 offsets)
//   {type: "commit", block, upto, html: [...], offset?, text?}
//                                                    finished markdown blocks, rendered (the
//                                                    text before `upto` leaves the tail), then
//                                                    what streamed after them, like an append
//   {type: "reset", block, text, base, hidden_lines}  capped command output, replaced
//   {type: "upsert", block, index} / {type: "remove", block} / {type: "final", block}
//   {type: "snapshot", blocks}                        the answer to our {type: "sync"}
// Every label and duration shown comes from Python; only the live clock is
// formatted here (fmtDuration, the twin of text.format_duration — a test
// checks they agree).  Text from the model or a command is only ever inserted
// with textContent / Text nodes; innerHTML is used only for fields Python
// sanitized: html segments, reason_html, code_html.

const TERMINAL = new Set(["completed", "interrupted", "failed", "error", "unfinished"]);
const VIEW_CAP = 64 * 1024; // characters of command output a view keeps
const COMMAND_ICONS = { completed: "✓", failed: "✗", declined: "⊘", incomplete: "–" };
const EXTENSION_FLAG = "codexNotebookExtension"; // set on <html> by our JupyterLab extension
// The fallback left in a dead output: literal colours (the notebook's sanitizer drops var()).
const FALLBACK_CARD = "border:1px solid #d0d7de;border-radius:8px;margin:4px 0;font-size:13px;line-height:1.5";
const FALLBACK_HEAD = "padding:6px 12px;border-bottom:1px solid #d0d7de;background:#fff8c5;color:#7d4e00;font-size:12px;font-weight:600";
const FALLBACK_PRE = "margin:4px 0;padding:8px 10px;background:#f6f8fa;border-radius:6px;white-space:pre-wrap;font-size:12px";
const CLICK_GRACE_MS = 6000; // after this long without an answer, a click may not have arrived
const MATH_IGNORE = "tex2jax_ignore mathjax_ignore"; // sanitize.MATH_IGNORE_CLASS: model text is not TeX

const ICON_PATHS = {
  think: "M8 1.8l1.4 4.8 4.8 1.4-4.8 1.4L8 14.2l-1.4-4.8L1.8 8l4.8-1.4z",
  edit: "M10.8 2.7l2.5 2.5-7.6 7.6-3.2.7.7-3.2zM9.3 4.2l2.5 2.5",
  search: "M7 2.5a4.5 4.5 0 1 0 0 9 4.5 4.5 0 1 0 0-9zM10.3 10.3L14 14",
  globe: "M8 1.7a6.3 6.3 0 1 0 0 12.6A6.3 6.3 0 1 0 8 1.7zM1.7 8h12.6M8 1.7c2.2 2.2 2.2 10.4 0 12.6M8 1.7c-2.2 2.2-2.2 10.4 0 12.6",
  tool: "M10.2 2.2a3.2 3.2 0 0 0-3 4.3L2.3 11.4l2.3 2.3 4.9-4.9a3.2 3.2 0 0 0 4.3-3l-2 2-1.9-.4-.4-1.9z",
  diff: "M5 2.5v7M1.5 6h7M9.5 12.5h5",
  info: "M8 1.7a6.3 6.3 0 1 0 0 12.6A6.3 6.3 0 1 0 8 1.7zM8 7.2v4.3M8 4.6v.4",
  retry: "M13.5 8a5.5 5.5 0 1 1-1.6-3.9M13.5 2.5v3h-3",
  image: "M2 3h12v10H2zM2 11l3.5-3.5 3 3 2-2L14 12M10.5 5.5v.5",
  agent: "M5.5 4a2 2 0 1 0 0 4 2 2 0 1 0 0-4zM10.5 4a2 2 0 1 0 0 4 2 2 0 1 0 0-4zM2 13c.5-2.5 6.5-2.5 7 0M7 13c.5-2.5 6.5-2.5 7 0",
  review: "M8 2v12M3 4.5h10M3 4.5l-1.5 4h3zM13 4.5l-1.5 4h3zM5.5 14h5",
  dot: "M8 6.5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 1 0 0-3z",
  warn: "M8 2L14.8 13.8H1.2zM8 6.3v3.8M8 11.6v.4",
  cell: "M2.5 2.5h11v11h-11zM2.5 6h11",
};
const EMOJI_ICONS = {
  "🔎": "search", "🌐": "globe", "🔧": "tool", "🤝": "agent", "🖼": "image", "⚖": "review",
  "⇲": "info", "⏸": "info", "↪": "info", "·": "dot", "•": "dot", "?": "info",
};
const SVG_NS = "http://www.w3.org/2000/svg";

// The one duration format (text.format_duration): integer arithmetic only.
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || ms < 0) return "";
  ms = Math.floor(ms);
  if (ms < 1000) return `${ms} ms`;
  if (ms < 10000) {
    const tenths = Math.floor(ms / 100);
    return `${Math.floor(tenths / 10)}.${tenths % 10} s`;
  }
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(seconds % 60).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

function icon(name, cls) {
  const wrap = document.createElement("span");
  wrap.className = `cxn-icon${cls ? ` ${cls}` : ""}`;
  const path = ICON_PATHS[name];
  if (!path) {
    wrap.textContent = name;
    return wrap;
  }
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  const el = document.createElementNS(SVG_NS, "path");
  el.setAttribute("d", path);
  svg.appendChild(el);
  wrap.appendChild(svg);
  return wrap;
}

// A class name made from data (a status, a role): one token, whatever the string holds.
function token(value) {
  return String(value).replace(/[^A-Za-z0-9_-]+/g, "-");
}

function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined && text !== null && text !== "") el.textContent = String(text);
  return el;
}

// `a` `b` in hints → <code> (built with text nodes, never innerHTML)
function inlineCode(parent, text) {
  String(text || "").split("`").forEach((part, i) => {
    if (!part) return;
    parent.appendChild(i % 2 ? h("code", "", part) : document.createTextNode(part));
  });
  return parent;
}

function countNewlines(s) {
  let n = 0;
  for (let i = s.indexOf("\n"); i !== -1; i = s.indexOf("\n", i + 1)) n++;
  return n;
}

function diffLines(text) {
  const pre = h("pre", "cxn-diff");
  const frag = document.createDocumentFragment();
  for (const line of String(text || "").split("\n")) {
    let cls = "";
    if (line.startsWith("+") && !line.startsWith("+++")) cls = "cxn-add";
    else if (line.startsWith("-") && !line.startsWith("---")) cls = "cxn-del";
    else if (line.startsWith("@@")) cls = "cxn-hunk";
    else if (/^(diff |index |\+\+\+|---)/.test(line)) cls = "cxn-meta";
    frag.appendChild(h("span", cls, line || " "));
  }
  pre.appendChild(frag);
  return pre;
}

function counts(added, removed) {
  const span = h("span", "cxn-counts");
  span.appendChild(h("span", "cxn-plus", `+${added || 0}`));
  span.appendChild(h("span", "cxn-minus", `−${removed || 0}`));
  return span;
}

function hiddenNote(n) {
  const el = h("div", "cxn-hidden");
  if (n) el.textContent = `… ${n.toLocaleString()} earlier lines hidden`;
  else el.hidden = true;
  return el;
}

function codeBlock(code, html) {
  const pre = h("pre", "cxn-code");
  if (html) pre.innerHTML = html; // highlighted and sanitized in Python
  else pre.textContent = code || "";
  return pre;
}

function lastTitle(text) {
  const re = /\*\*([^*\n]{1,120})\*\*/g;
  let m;
  let title = "";
  while ((m = re.exec(text)) !== null) title = m[1].trim();
  return title;
}

// The part of a block that is not streamed: when it changes, rebuild.
const STREAM_FIELDS = new Set(["text", "base", "hidden_lines", "html_segments", "committed", "tail", "final"]);
function signature(b) {
  const rest = {};
  for (const key of Object.keys(b)) if (!STREAM_FIELDS.has(key)) rest[key] = b[key];
  if (b.kind !== "message" && b.kind !== "reasoning") rest.final = b.final;
  return JSON.stringify(rest);
}

function render({ model, el }) {
  const root = h("div", "cxn");
  const head = h("div", "cxn-head");
  const dot = h("span", "cxn-dot");
  const brand = h("span", "cxn-brand", "codex");
  const thread = h("span", "cxn-thread");
  const status = h("span", "cxn-status");
  const detail = h("span", "cxn-detail");
  const grow = h("span", "cxn-grow");
  const badge = h("span", "cxn-badge");
  const modelName = h("span", "cxn-meta-item");
  const tokens = h("span", "cxn-meta-item");
  const elapsed = h("span", "cxn-meta-item cxn-elapsed");
  const stop = h("button", "cxn-stop", "Stop");
  stop.type = "button";
  stop.title = "Interrupt this turn";
  head.append(dot, brand, thread, status, detail, grow, badge, modelName, tokens, elapsed, stop);
  const banner = h("div", "cxn-banner");
  const waiting = h("div", "cxn-waiting");
  waiting.setAttribute("role", "status");
  waiting.setAttribute("aria-live", "polite");
  const body = h("div", "cxn-body");
  const placeholder = h("div", "cxn-placeholder");
  root.append(head, banner, waiting, body);
  el.appendChild(root);

  const views = new Map(); // block id -> {el, sig, stream?, md?}
  const proposed = new Map(); // proposal block id -> {number, code}: kept for an unfinished copy
  let order = []; // block ids in display order
  const toggled = new Map(); // block id (or id/path) -> open, when the reader toggled it
  const clicked = new Map(); // request key -> decision clicked, until the state says so
  let clockOffset = 0; // kernel clock - browser clock (ms)
  let syncTimer = null;
  let stopTimer = null;
  let lost = false; // the kernel (or the comm) is gone: nothing will change any more

  function send(message) {
    if (lost) return false;
    try {
      model.send(message);
      return true;
    } catch (err) {
      markLost("The kernel is gone");
      return false;
    }
  }

  function requestSync() {
    if (syncTimer !== null || lost) return;
    send({ type: "sync" });
    syncTimer = setTimeout(() => { syncTimer = null; }, 2000);
  }

  function rememberToggle(details, key) {
    details.addEventListener("toggle", () => toggled.set(key, details.open));
  }
  function initialOpen(key, dflt) {
    return toggled.has(key) ? toggled.get(key) : dflt;
  }

  // --- streamed text ---------------------------------------------------------------

  function makeStream(container, text, base, hidden, capped, onText) {
    const node = document.createTextNode(text || "");
    container.appendChild(node);
    return { node, base: base || 0, hidden: hidden || 0, capped, onText, hiddenEl: null, scroller: null };
  }

  function streamLength(s) {
    return s.base + s.node.length;
  }

  function afterText(s) {
    if (s.capped && s.node.length > VIEW_CAP * 1.5) {
      const data = s.node.data;
      let cut = data.indexOf("\n", data.length - VIEW_CAP);
      cut = cut === -1 ? data.length - VIEW_CAP : cut + 1;
      s.hidden += countNewlines(data.slice(0, cut));
      s.base += cut;
      s.node.deleteData(0, cut);
    }
    if (s.hiddenEl) {
      s.hiddenEl.hidden = !s.hidden;
      s.hiddenEl.textContent = s.hidden ? `… ${s.hidden.toLocaleString()} earlier lines hidden` : "";
    }
    if (s.onText) s.onText(s.node.data);
  }

  function appendText(s, text) {
    const sc = s.scroller;
    const atBottom = sc && sc.scrollHeight - sc.scrollTop - sc.clientHeight < 24;
    s.node.appendData(text);
    afterText(s);
    if (atBottom) sc.scrollTop = sc.scrollHeight;
  }

  function resetText(s, text, base, hidden) {
    s.node.data = text || "";
    s.base = base || 0;
    s.hidden = hidden || 0;
    afterText(s);
    if (s.scroller) s.scroller.scrollTop = s.scroller.scrollHeight;
  }

  // Markdown that streams: rendered segments, then the unfinished tail as text.
  function makeMarkdown(container, b, onText) {
    const segments = h("div", "cxn-segments");
    const tail = h("div", "cxn-tail");
    container.append(segments, tail);
    const md = { segments, tail, count: 0, stream: null };
    addSegments(md, b.html_segments || []);
    md.stream = makeStream(tail, b.final ? "" : b.tail, b.committed || 0, 0, false, onText);
    tail.classList.toggle("cxn-streaming", !b.final);
    return md;
  }

  function addSegments(md, html) {
    for (const segment of html) {
      const div = document.createElement("div");
      div.className = "cxn-segment";
      div.innerHTML = segment; // sanitized in Python
      md.segments.appendChild(div);
      md.count += 1;
    }
  }

  // The HTML stands for all text before `upto`, so a commit never waits for the
  // text it covers (the sender drops that text from the message).
  function commit(v, msg) {
    const md = v.md;
    const s = md.stream;
    if (msg.upto > s.base) { // else a snapshot overtook us: we have these segments
      addSegments(md, msg.html || []);
      s.node.deleteData(0, Math.min(msg.upto - s.base, s.node.length));
      s.base = msg.upto;
    }
    if (typeof msg.text === "string") appendAt(s, msg.offset, msg.text);
  }

  function appendAt(s, offset, text) {
    const length = streamLength(s);
    if (offset > length) { requestSync(); return; } // we missed some: ask for all
    const skip = length - offset;
    if (skip >= text.length) return;
    appendText(s, skip > 0 ? text.slice(skip) : text);
  }

  function onCustom(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "upsert") {
      upsertView(msg.block);
      placeAt(msg.block.id, msg.index);
      renderPlaceholder();
      return;
    }
    if (msg.type === "remove") {
      removeView(msg.block);
      renderPlaceholder();
      return;
    }
    if (msg.type === "snapshot") {
      if (syncTimer !== null) { clearTimeout(syncTimer); syncTimer = null; }
      applyBlocks(msg.blocks || []);
      return;
    }
    const v = views.get(msg.block);
    if (!v) { requestSync(); return; } // a block we never heard of
    if (msg.type === "final") {
      v.root.classList.remove("cxn-live");
      if (v.md) v.md.tail.classList.remove("cxn-streaming");
      return;
    }
    if (msg.type === "commit") {
      if (v.md) commit(v, msg);
      return;
    }
    const s = v.stream;
    if (!s) return;
    if (msg.type === "append") {
      appendAt(s, msg.offset, msg.text);
    } else if (msg.type === "reset") {
      resetText(s, msg.text, msg.base, msg.hidden_lines);
    }
  }

  // --- blocks ----------------------------------------------------------------------

  function buildMessage(b) {
    const wrap = h("div", `cxn-block cxn-message cxn-role-${token(b.role || "answer")}${b.final ? "" : " cxn-live"}`);
    if (b.role === "plan") wrap.appendChild(h("div", "cxn-label", "Proposed plan"));
    const body = h("div", "cxn-md");
    wrap.appendChild(body);
    const md = makeMarkdown(body, b);
    return { el: wrap, root: wrap, md, stream: md.stream };
  }

  function buildReasoning(b) {
    const details = h("details", `cxn-block cxn-reasoning${b.final ? "" : " cxn-live"}`);
    details.open = initialOpen(b.id, false);
    rememberToggle(details, b.id);
    const summary = h("summary", "cxn-summary");
    const title = h("span", "cxn-reasoning-title", b.title || (b.final ? "Reasoning" : "Thinking…"));
    summary.append(icon("think"), title);
    if (!b.final) summary.appendChild(h("span", "cxn-spinner"));
    const body = h("div", "cxn-md cxn-reasoning-body");
    details.append(summary, body);
    const onText = (text) => { if (!b.title) title.textContent = lastTitle(text) || "Thinking…"; };
    const md = makeMarkdown(body, b, onText);
    return { el: details, root: details, md, stream: md.stream };
  }

  function buildCommand(b) {
    const details = h("details", `cxn-block cxn-command cxn-st-${token(b.status)}${b.failed ? " cxn-failed" : ""}`);
    details.open = initialOpen(b.id, !b.final || b.failed);
    rememberToggle(details, b.id);
    const summary = h("summary", "cxn-summary");
    const statusIcon = b.final ? h("span", "cxn-icon", COMMAND_ICONS[b.status] || "•") : h("span", "cxn-spinner");
    const cmd = h("code", "cxn-cmd", b.command);
    if (b.full_command && b.full_command !== b.command) cmd.title = b.full_command;
    summary.append(statusIcon, h("span", "cxn-prompt", "$"), cmd, h("span", "cxn-cmd-meta", b.meta));
    details.appendChild(summary);
    const bodyEl = h("div", "cxn-command-body");
    if (b.cwd) bodyEl.appendChild(h("div", "cxn-cwd", `in ${b.cwd}`));
    const hidden = hiddenNote(b.hidden_lines);
    const pre = h("pre", "cxn-output");
    bodyEl.append(hidden, pre);
    if (b.final && !b.text) bodyEl.appendChild(h("div", "cxn-note", b.empty_note));
    details.appendChild(bodyEl);
    const stream = makeStream(pre, b.text, b.base, b.hidden_lines, true);
    stream.hiddenEl = hidden;
    stream.scroller = pre;
    requestAnimationFrame(() => { pre.scrollTop = pre.scrollHeight; });
    return { el: details, root: details, stream: b.final ? undefined : stream };
  }

  function fileRow(f, key, showDiff) {
    const label = [icon("edit"), h("span", "cxn-verb", f.verb), h("code", "cxn-path", f.name), counts(f.added, f.removed)];
    if (!showDiff) {
      const row = h("div", "cxn-file cxn-summary");
      row.append(...label);
      return row;
    }
    const details = h("details", "cxn-file");
    details.open = initialOpen(key, false);
    rememberToggle(details, key);
    const summary = h("summary", "cxn-summary");
    summary.append(...label);
    details.append(summary, hiddenNote(f.hidden_lines), diffLines(f.diff));
    return details;
  }

  function buildFileChange(b) {
    const wrap = h("div", `cxn-block cxn-file-change cxn-st-${token(b.status)}`);
    for (const f of b.files || []) wrap.appendChild(fileRow(f, `${b.id}/${f.path}`, b.show_diffs));
    if (b.note) wrap.appendChild(h("div", "cxn-note", b.note));
    const pre = h("pre", "cxn-output");
    wrap.appendChild(pre);
    const stream = makeStream(pre, b.text, b.base, b.hidden_lines, true);
    return { el: wrap, root: wrap, stream: b.final ? undefined : stream };
  }

  function buildDiff(b) {
    const details = h("details", "cxn-block cxn-turn-diff");
    details.open = initialOpen(b.id, false);
    rememberToggle(details, b.id);
    const summary = h("summary", "cxn-summary");
    summary.append(icon("diff"), h("span", "", b.title), counts(b.added, b.removed));
    const list = h("div", "cxn-file-list");
    for (const f of b.files || []) {
      const row = h("div", "cxn-file-list-row");
      row.append(h("code", "cxn-path", f.path), counts(f.added, f.removed));
      list.appendChild(row);
    }
    details.append(summary, list, hiddenNote(b.hidden_lines), diffLines(b.diff));
    return { el: details, root: details };
  }

  function buildPlan(b) {
    const wrap = h("div", "cxn-block cxn-plan");
    wrap.appendChild(h("div", "cxn-label", "Plan"));
    if (b.explanation) wrap.appendChild(h("div", "cxn-plan-explanation", b.explanation));
    const list = h("ul", "cxn-steps");
    for (const s of b.steps || []) {
      const li = h("li", `cxn-step cxn-step-${token(s.status)}`);
      li.append(h("span", "cxn-step-icon", s.icon), h("span", "", s.step));
      list.appendChild(li);
    }
    wrap.appendChild(list);
    return { el: wrap, root: wrap };
  }

  function buildApproval(b) {
    const wrap = h("div", `cxn-block cxn-approval cxn-ap-${token(b.state)}`);
    const title = h("div", "cxn-approval-title");
    title.append(icon("warn"), h("span", "", b.title || "Allow this?"));
    if (b.state === "pending") title.appendChild(h("span", "cxn-you", "waiting for you"));
    wrap.appendChild(title);
    if (b.command) {
      if (b.language) {
        wrap.appendChild(codeBlock(b.command, b.code_html));
      } else {
        const pre = h("pre", "cxn-approval-cmd");
        pre.append(h("span", "cxn-prompt", "$ "), document.createTextNode(b.command));
        wrap.appendChild(pre);
      }
    }
    if (b.details) wrap.appendChild(h("pre", "cxn-approval-details", b.details));
    const facts = h("div", "cxn-approval-facts");
    if (b.reason_html) {
      const reason = h("span", "cxn-reason");
      reason.innerHTML = b.reason_html; // inline markdown, sanitized in Python
      facts.appendChild(reason);
    }
    if (b.cwd) facts.appendChild(h("span", "cxn-cwd", `in ${b.cwd}`));
    if (facts.childNodes.length) wrap.appendChild(facts);
    if (b.state === "pending") {
      const actions = h("div", "cxn-actions");
      const note = h("span", "cxn-actions-note");
      const key = JSON.stringify(b.request);
      const chosen = clicked.get(key);
      for (const d of b.decisions || []) {
        const btn = h("button", `cxn-btn cxn-btn-${token(d.decision)}${d.recommended ? " cxn-recommended" : ""}`, d.label);
        btn.type = "button";
        btn.title = d.recommended ? `${d.hint} (suggested by codex)` : d.hint;
        if (chosen || lost) {
          btn.disabled = true;
          if (chosen === d.decision) btn.classList.add("cxn-chosen");
        }
        btn.addEventListener("click", () => {
          clicked.set(key, d.decision);
          for (const other of actions.querySelectorAll("button")) other.disabled = true;
          btn.classList.add("cxn-chosen");
          note.textContent = "sent — waiting for the kernel…";
          if (!send({ type: "decision", request: b.request, decision: d.decision })) return;
          setTimeout(() => {
            if (note.isConnected) {
              note.textContent = "no answer from the kernel yet: it may be busy, or the click was lost — " +
                `run turn.decide("${d.decision}") in a cell`;
            }
          }, CLICK_GRACE_MS);
        });
        actions.appendChild(btn);
      }
      if (chosen) note.textContent = "sent — waiting for the kernel…";
      actions.appendChild(note);
      wrap.appendChild(actions);
    } else {
      wrap.appendChild(h("div", `cxn-outcome${b.good ? " cxn-good" : ""}`, `${b.good ? "✓" : "✗"} ${b.outcome}`));
    }
    return { el: wrap, root: wrap };
  }

  function buildTool(b) {
    const wrap = h("div", `cxn-block cxn-tool cxn-st-${token(b.status)}`);
    const line = h("div", "cxn-line");
    line.append(b.final ? icon("tool") : h("span", "cxn-spinner"), h("span", "cxn-line-label", "tool"), h("code", "cxn-line-text", b.title));
    if (b.arguments) line.appendChild(h("span", "cxn-line-detail", b.arguments));
    if (b.meta) line.appendChild(h("span", "cxn-line-status", b.meta));
    wrap.appendChild(line);
    if (b.code) wrap.appendChild(codeBlock(b.code, b.code_html));
    if (b.outcome) wrap.appendChild(h("div", "cxn-tool-outcome", b.outcome));
    if (b.changed && b.changed.length) {
      const changed = h("div", "cxn-tool-outcome", "changed: ");
      b.changed.forEach((name, i) => {
        if (i) changed.appendChild(document.createTextNode(", "));
        changed.appendChild(h("code", "", name));
      });
      wrap.appendChild(changed);
    }
    return { el: wrap, root: wrap };
  }

  function buildProposal(b) {
    const wrap = h("div", "cxn-block cxn-proposal");
    const title = h("div", "cxn-approval-title");
    title.append(icon("cell"), h("span", "", `Proposed cell ${b.number}`));
    wrap.appendChild(title);
    if (b.explanation_html) {
      const explanation = h("div", "cxn-plan-explanation");
      explanation.innerHTML = b.explanation_html; // inline markdown, sanitized in Python
      wrap.appendChild(explanation);
    }
    wrap.appendChild(codeBlock(b.code, b.code_html));
    const actions = h("div", "cxn-actions");
    const note = h("span", "cxn-actions-note");
    if (document.documentElement.dataset[EXTENSION_FLAG]) {
      const insert = h("button", "cxn-btn cxn-btn-accept", "Insert below");
      insert.type = "button";
      insert.title = "Put this code into a new cell under this one (it does not run)";
      insert.addEventListener("click", () => {
        const detail = { code: b.code, handled: false };
        el.dispatchEvent(new CustomEvent("codex-notebook:insert-cell", { bubbles: true, composed: true, detail }));
        note.textContent = detail.handled ? "inserted below" : `could not insert: run %codex insert ${b.number}`;
      });
      actions.appendChild(insert);
    }
    const copy = h("button", "cxn-btn", "Copy");
    copy.type = "button";
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(b.code);
        note.textContent = "copied";
      } catch (err) {
        note.textContent = `copy failed: select the code, or run %codex insert ${b.number}`;
      }
    });
    actions.append(copy, note);
    if (!document.documentElement.dataset[EXTENSION_FLAG]) note.textContent = `or run %codex insert ${b.number}`;
    wrap.appendChild(actions);
    return { el: wrap, root: wrap };
  }

  function buildError(b) {
    const wrap = h("div", "cxn-block cxn-error");
    const title = h("div", "cxn-error-title");
    title.append(h("span", "cxn-icon", "✗"), inlineCode(h("span"), b.title || "error"));
    wrap.appendChild(title);
    if (b.detail) wrap.appendChild(h("pre", "cxn-error-detail", b.detail));
    if (b.hint) wrap.appendChild(inlineCode(h("div", "cxn-hint"), b.hint));
    return { el: wrap, root: wrap };
  }

  function buildNotice(b) {
    const wrap = h("div", `cxn-block cxn-notice cxn-tone-${token(b.tone || "info")}`);
    wrap.append(icon(b.tone === "warn" ? "retry" : "info"), h("span", "", b.text));
    return { el: wrap, root: wrap };
  }

  function buildLine(b) {
    const wrap = h("div", "cxn-block cxn-line");
    wrap.append(icon(EMOJI_ICONS[b.icon] || "dot"), h("span", "cxn-line-label", b.label));
    if (b.text) wrap.appendChild(h("code", "cxn-line-text", b.text));
    if (b.status && b.status !== "completed") wrap.appendChild(h("span", "cxn-line-status", b.status));
    if (b.detail) wrap.appendChild(h("span", "cxn-line-detail", b.detail));
    return { el: wrap, root: wrap };
  }

  const BUILDERS = {
    message: buildMessage,
    reasoning: buildReasoning,
    command: buildCommand,
    file_change: buildFileChange,
    diff: buildDiff,
    plan: buildPlan,
    approval: buildApproval,
    tool: buildTool,
    proposal: buildProposal,
    error: buildError,
    notice: buildNotice,
    line: buildLine,
  };

  function build(b) {
    const builder = BUILDERS[b.kind];
    if (builder) return builder(b);
    return buildLine({ icon: "·", label: "unsupported block", text: b.kind });
  }

  // Build or update one block's element (not placed).
  function upsertView(b) {
    if (b.kind === "proposal") proposed.set(b.id, { number: b.number, code: b.code });
    const sig = signature(b);
    let v = views.get(b.id);
    const sameMd = v && v.sig === sig && v.md
      && (b.html_segments || []).length === v.md.count && (b.committed || 0) === v.md.stream.base;
    if (!v || v.sig !== sig || (v.md && !sameMd)) {
      const nv = build(b);
      nv.sig = sig;
      if (v) {
        if (!v.md && v.stream && nv.stream && streamLength(v.stream) > streamLength(nv.stream)) {
          resetText(nv.stream, v.stream.node.data, v.stream.base, v.stream.hidden);
        }
        v.el.replaceWith(nv.el);
      }
      views.set(b.id, nv);
      v = nv;
    } else if (v.md) {
      const length = (b.committed || 0) + (b.tail || "").length;
      if (!b.final && length > streamLength(v.md.stream)) resetText(v.md.stream, b.tail, b.committed, 0);
      if (b.final) onCustom({ type: "final", block: b.id });
    } else if (v.stream && !b.final) {
      const length = (b.base || 0) + (b.text || "").length;
      if (length > streamLength(v.stream)) resetText(v.stream, b.text, b.base, b.hidden_lines);
    }
    return v;
  }

  function removeView(id) {
    proposed.delete(id);
    const v = views.get(id);
    if (v) {
      v.el.remove();
      views.delete(id);
    }
    order = order.filter((x) => x !== id);
  }

  function placeAt(id, index) {
    const v = views.get(id);
    order = order.filter((x) => x !== id);
    const at = Math.max(0, Math.min(index, order.length));
    order.splice(at, 0, id);
    const nextId = order[at + 1];
    const next = nextId === undefined ? null : views.get(nextId).el;
    if (v.el.parentNode !== body || v.el.nextSibling !== next) body.insertBefore(v.el, next);
  }

  // Make the view show exactly `blocks` (a trait value or a snapshot).
  function applyBlocks(blocks) {
    const ids = new Set(blocks.map((b) => b.id));
    for (const id of [...views.keys()]) if (!ids.has(id)) removeView(id);
    order = [];
    let prev = null;
    for (const b of blocks) {
      const v = upsertView(b);
      order.push(b.id);
      const next = prev ? prev.nextSibling : body.firstChild;
      if (v.el !== next) body.insertBefore(v.el, next);
      prev = v.el;
    }
    renderPlaceholder();
  }

  // --- header ----------------------------------------------------------------------

  function header() {
    const hd = model.get("header") || {};
    return lost ? { ...hd, status: "unfinished", can_stop: false, stopping: false } : hd;
  }

  function renderPlaceholder() {
    const hd = header();
    const show = views.size === 0;
    if (!show) { placeholder.remove(); return; }
    placeholder.textContent = TERMINAL.has(hd.status)
      ? "(no output)"
      : hd.status === "queued" ? "Waiting for the previous turn on this thread…" : "Thinking…";
    placeholder.classList.toggle("cxn-shimmer", !TERMINAL.has(hd.status));
    if (!placeholder.parentNode) body.appendChild(placeholder);
  }

  function tickElapsed() {
    const hd = header();
    if (!hd.started_at) { elapsed.textContent = ""; return; }
    if (hd.elapsed) { elapsed.textContent = hd.elapsed; return; }
    if (lost) return; // the clock stopped with the kernel
    elapsed.textContent = fmtDuration(Date.now() + clockOffset - hd.started_at);
  }

  function renderHeader(live) {
    const hd = header();
    if (live && hd.clock) clockOffset = hd.clock - Date.now();
    const st = hd.status || "starting";
    root.dataset.status = st;
    root.className = `cxn cxn-status-${token(st)}`;
    thread.textContent = hd.thread || "main";
    status.textContent = st === "waiting for approval" ? "waiting for you" : st;
    // the banner below says it when waiting for approval
    detail.textContent = st === "waiting for approval" ? "" : hd.detail || "";
    badge.textContent = hd.badge || "";
    badge.hidden = !hd.badge;
    badge.title = hd.badge === "demo model" ? "A built-in scripted model: no account, no network" : "";
    modelName.textContent = hd.model || "";
    modelName.hidden = !hd.model;
    tokens.textContent = hd.tokens || "";
    tokens.hidden = !hd.tokens;
    tokens.title = hd.tokens_detail || "";
    const ended = TERMINAL.has(st);
    stop.hidden = ended || !hd.can_stop;
    if (hd.stopping) {
      stop.disabled = true;
      stop.textContent = "Stopping…";
    } else if (stopTimer === null) {
      stop.disabled = false;
      stop.textContent = "Stop";
    }
    const notices = [];
    if (lost) notices.push(`${lost} — this turn was lost. What streamed so far is kept below.`);
    if (hd.notice) notices.push(hd.notice);
    banner.textContent = notices.join(" ");
    banner.hidden = !notices.length;
    banner.classList.toggle("cxn-banner-lost", lost);
    const pending = hd.pending || 0;
    waiting.hidden = ended || st !== "waiting for approval";
    waiting.textContent = pending > 1
      ? `Waiting for you: ${pending} approvals below.`
      : "Waiting for your decision below.";
    tickElapsed();
    renderPlaceholder();
  }

  // The kernel or the comm is gone (restart, shutdown, crash): stop pretending.  Said once,
  // whichever sign came first (docs/labextension.md: what a view can observe, measured).
  function markLost(why) {
    if (lost || TERMINAL.has((model.get("header") || {}).status)) return;
    lost = why || "The kernel restarted or shut down";
    for (const v of views.values()) {
      v.root.classList.remove("cxn-live");
      if (v.md) v.md.tail.classList.remove("cxn-streaming");
    }
    for (const button of root.querySelectorAll(".cxn-actions button")) button.disabled = true;
    renderHeader(false);
    leaveFallback();
  }

  // With our JupyterLab / Notebook 7 extension, replace this (dead) output by a static copy
  // of what streamed so far, marked unfinished, so a saved notebook keeps it readable.
  function leaveFallback() {
    if (!document.documentElement.dataset[EXTENSION_FLAG]) return;
    if (!el.isConnected) { setTimeout(leaveFallback, 200); return; } // the event must bubble up
    const hd = model.get("header") || {};
    const copy = body.cloneNode(true);
    for (const gone of copy.querySelectorAll("button, svg, .cxn-spinner, .cxn-actions, .cxn-you, .cxn-placeholder")) gone.remove();
    for (const pre of copy.querySelectorAll("pre")) pre.setAttribute("style", FALLBACK_PRE);
    for (const node of copy.querySelectorAll("[class]")) node.removeAttribute("class");
    const title = `codex · ${hd.thread || "main"} · unfinished — ${lost}: this turn was lost.`;
    const text = body.innerText || body.textContent || "";
    const head = document.createElement("div");
    head.setAttribute("style", FALLBACK_HEAD);
    head.textContent = title;
    const card = document.createElement("div");
    card.className = MATH_IGNORE; // notebook frontends typeset $…$ in HTML outputs
    card.setAttribute("style", FALLBACK_CARD);
    const inner = document.createElement("div");
    inner.setAttribute("style", "padding:6px 12px");
    inner.append(...copy.childNodes);
    card.append(head, inner);
    // proposals in the metadata: the extension shows Insert / Copy under the saved copy too
    const proposals = order.filter((id) => proposed.has(id)).map((id) => proposed.get(id));
    const detail = {
      data: { "text/plain": `${title}\n\n${text}`.trim(), "text/html": card.outerHTML },
      metadata: { codex_notebook: { thread_name: hd.thread, status: "unfinished", unfinished: true, proposals } },
    };
    el.dispatchEvent(new CustomEvent("codex-notebook:replace-output", { bubbles: true, composed: true, detail }));
  }

  function watchKernel() {
    model.on("comm_live_update", () => markLost("The kernel restarted"));
    const manager = model.widget_manager;
    const kernel = manager ? manager.kernel : undefined;
    if (!kernel) return () => {};
    const onDisposed = () => markLost("The kernel shut down");
    const onStatus = (_k, state) => { if (state === "dead") markLost("The kernel died"); };
    kernel.disposed?.connect(onDisposed);
    kernel.statusChanged?.connect(onStatus);
    const check = setInterval(() => {
      if (model.widget_manager && model.widget_manager.kernel !== kernel) markLost("The kernel changed");
    }, 1000);
    return () => {
      clearInterval(check);
      kernel.disposed?.disconnect(onDisposed);
      kernel.statusChanged?.disconnect(onStatus);
    };
  }

  stop.addEventListener("click", () => {
    stop.disabled = true;
    stop.textContent = "Stopping…";
    send({ type: "stop" });
    // let a second click through if nothing happened (a busy kernel answers late)
    stopTimer = setTimeout(() => {
      stopTimer = null;
      renderHeader(false);
    }, 5000);
  });

  const onHeader = () => renderHeader(true);
  const onBlocks = () => applyBlocks(model.get("blocks") || []);
  model.on("change:header", onHeader);
  model.on("change:blocks", onBlocks);
  model.on("msg:custom", onCustom);
  renderHeader(false);
  applyBlocks(model.get("blocks") || []);
  const unwatch = watchKernel();
  if (el.classList.contains("jupyter-widgets-disconnected")) {
    markLost("Reopened without its kernel"); // rebuilt from saved widget state, no comm
  } else if (!TERMINAL.has((model.get("header") || {}).status)) {
    // Messages sent before this view existed are lost: while the turn runs, ask
    // for everything as it is now (the trait may lag behind the upserts).
    requestSync();
  }
  const timer = setInterval(tickElapsed, 1000);

  return () => {
    unwatch();
    clearInterval(timer);
    if (syncTimer !== null) clearTimeout(syncTimer);
    if (stopTimer !== null) clearTimeout(stopTimer);
    model.off("change:header", onHeader);
    model.off("change:blocks", onBlocks);
    model.off("msg:custom", onCustom);
  };
}

export default { render };
