// Runs the turn widget's view (static/turn_widget.js) under node against a minimal DOM that
// records what the view does with the data it is given: every innerHTML written, every class
// name set.  Input (stdin, JSON): {header, blocks, messages}; output (stdout, JSON):
// {innerHTML: [string], classes: [string], text: string}.  Used by tests/unit/test_widget_js.py.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const record = { innerHTML: [], classes: [] };

class Node {
  constructor() { this.parentNode = null; this.childNodes = []; }
  get nextSibling() {
    const siblings = this.parentNode ? this.parentNode.childNodes : [];
    return siblings[siblings.indexOf(this) + 1] || null;
  }
  get firstChild() { return this.childNodes[0] || null; }
  get isConnected() { return true; }
  remove() {
    if (this.parentNode) this.parentNode.childNodes.splice(this.parentNode.childNodes.indexOf(this), 1);
    this.parentNode = null;
  }
  replaceWith(node) { const parent = this.parentNode; parent.insertBefore(node, this); this.remove(); }
  insertBefore(node, ref) {
    const nodes = node.fragment ? [...node.childNodes] : [node];
    for (const n of nodes) {
      n.remove();
      const at = ref ? this.childNodes.indexOf(ref) : -1;
      this.childNodes.splice(at < 0 ? this.childNodes.length : at, 0, n);
      n.parentNode = this;
    }
    return node;
  }
  appendChild(node) { return this.insertBefore(node, null); }
  append(...nodes) {
    for (const n of nodes) this.appendChild(typeof n === "string" ? new Text(n) : n);
  }
  get textContent() { return this.childNodes.map((n) => n.textContent).join(""); }
  set textContent(value) {
    for (const n of [...this.childNodes]) n.remove();
    if (value !== "") this.appendChild(new Text(String(value)));
  }
}

class Text extends Node {
  constructor(data) { super(); this.data = data; }
  get length() { return this.data.length; }
  get textContent() { return this.data; }
  appendData(text) { this.data += text; }
  deleteData(offset, count) { this.data = this.data.slice(0, offset) + this.data.slice(offset + count); }
}

class ClassList {
  constructor(el) { this.el = el; }
  get tokens() { return this.el.className.split(/\s+/).filter(Boolean); }
  add(...names) { this.el.className = [...new Set([...this.tokens, ...names])].join(" "); }
  remove(...names) { this.el.className = this.tokens.filter((t) => !names.includes(t)).join(" "); }
  toggle(name, on) { if (on ?? !this.contains(name)) this.add(name); else this.remove(name); }
  contains(name) { return this.tokens.includes(name); }
}

class Element extends Node {
  constructor(tag) {
    super();
    this.tagName = tag.toUpperCase();
    this._class = "";
    this.classList = new ClassList(this);
    this.dataset = {};
    this.attributes = {};
    this.scrollTop = 0; this.scrollHeight = 0; this.clientHeight = 0;
  }
  get className() { return this._class; }
  set className(value) { this._class = String(value); record.classes.push(this._class); }
  set innerHTML(value) {
    record.innerHTML.push(String(value));
    for (const n of [...this.childNodes]) n.remove();
  }
  setAttribute(name, value) { this.attributes[name] = String(value); }
  getAttribute(name) { return this.attributes[name] ?? null; }
  removeAttribute(name) { delete this.attributes[name]; }
  addEventListener() {}
  removeEventListener() {}
  dispatchEvent() { return true; }
  querySelectorAll() { return []; }
}

const documentElement = new Element("html");
globalThis.document = {
  documentElement,
  createElement: (tag) => new Element(tag),
  createElementNS: (_ns, tag) => new Element(tag),
  createTextNode: (text) => new Text(String(text)),
  createDocumentFragment: () => Object.assign(new Element("#fragment"), { fragment: true }),
};
globalThis.requestAnimationFrame = () => 0;
globalThis.setInterval = () => 0;
globalThis.clearInterval = () => {};
globalThis.setTimeout = () => 0;
globalThis.clearTimeout = () => {};

const input = JSON.parse(readFileSync(0, "utf-8"));
const widget = await import(pathToFileURL(process.argv[2]).href);
const handlers = {};
const model = {
  get: (name) => ({ header: input.header, blocks: input.blocks })[name],
  on: (event, fn) => { handlers[event] = fn; },
  off: () => {},
  send: () => {},
};
const el = new Element("div");
widget.default.render({ model, el });
for (const message of input.messages || []) handlers["msg:custom"](message);
console.log(JSON.stringify({ ...record, text: el.textContent }));
