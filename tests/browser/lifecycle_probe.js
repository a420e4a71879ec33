// An anywidget view that records what it can observe about its kernel and comm: the model
// events that reach it through anywidget's model proxy, the abort of the `signal` anywidget
// passes to render, the kernel connection seen through `model.widget_manager.kernel`, and
// whether `model.send` throws. tests/browser/test_widget_lifecycle.py reads the log from
// `window.__lifecycle[label]` and from the <pre> the view shows (for the screenshots).
//
// The view object itself is reached through the proxy's `on`: anywidget registers every
// listener with the view as Backbone context, so `this` in a plain-function listener is the
// view. Setting a local (never saved) attribute triggers such a listener synchronously.
//
// With `fallback` set, the probe also follows the recipe of docs/labextension.md: when it
// learns that its kernel is gone it asks the codex-notebook extension to replace its output
// with a static copy of its log (`codex-notebook:replace-output`).

function describeKernel(kernel) {
  if (kernel === undefined) return 'no widget_manager.kernel';
  if (kernel === null) return 'kernel null';
  return `kernel ${kernel.status}/${kernel.connectionStatus}${kernel.isDisposed ? ' disposed' : ''}`;
}

function describeComm(view) {
  const model = view.model;
  const comm = model.comm;
  const services = comm && comm.jsServicesComm;
  let where = 'no comm';
  if (comm) where = services && services.isDisposed ? 'comm disposed' : 'comm open';
  return `comm_live=${model.comm_live} ${where}`;
}

// ipywidgets' DOMWidgetView keeps this class on its element while comm_live is false.
function describeElement(el) {
  const gone = el.classList.contains('jupyter-widgets-disconnected');
  return `${el.isConnected ? 'attached' : 'detached'}${gone ? ' .jupyter-widgets-disconnected' : ''}`;
}

function escapeHtml(text) {
  const div = document.createElement('div');
  div.textContent = text;
  return div.innerHTML;
}

function render({ model, el, signal }) {
  const label = model.get('label');
  const log = ((window.__lifecycle ??= {})[label] ??= []);
  const started = performance.now();
  const pre = document.createElement('pre');
  pre.className = 'lifecycle-log';
  const heading = document.createElement('b');
  heading.textContent = `probe ${label}`;
  el.append(heading, pre);
  const note = (what) => {
    const line = `${((performance.now() - started) / 1000).toFixed(2)}s ${what}`;
    log.push(line);
    pre.textContent += line + '\n';
  };

  let replaced = false;
  const lost = (why) => {
    if (replaced || !model.get('fallback')) return;
    replaced = true;
    note(`lost: ${why}`);
    const text = log.join('\n');
    const detail = {
      data: {
        'text/plain': `probe ${label}: ${why}\n${text}`,
        'text/html':
          `<div class="probe-fallback"><b>probe ${label}: ${escapeHtml(why)}</b>` +
          `<pre>${escapeHtml(text)}</pre></div>`,
      },
      metadata: { probe: { label, why } },
    };
    el.dispatchEvent(
      new CustomEvent('codex-notebook:replace-output', { bubbles: true, composed: true, detail })
    );
    // The extension replaced this output synchronously (this view is being disposed).
    note(`replace-output handled=${detail.handled} error=${detail.error}`);
  };

  let view = null;
  model.on('change:_probe_view', function () {
    view = this;
  });
  model.set('_probe_view', Math.random());
  model.off('change:_probe_view');

  const manager = model.widget_manager;
  let kernel = manager ? manager.kernel : undefined;
  note(
    `render: ${view ? describeComm(view) : 'view unknown'}; ${describeKernel(kernel)}; ` +
      `el ${describeElement(el)}`
  );

  for (const name of ['comm_live_update', 'comm:close', 'destroy']) {
    model.on(name, function () {
      note(`model event ${name}: ${describeComm(this)}; el ${describeElement(el)}`);
      if (name === 'comm_live_update') lost('kernel restarted');
    });
  }
  model.on('msg:custom', (msg) => note(`msg:custom ${JSON.stringify(msg)}`));
  model.on('change:pings', () => note(`pings ${model.get('pings')}`));
  let count = null;
  model.on('change:count', () => {
    count = model.get('count');
  });

  const onStatus = (_k, status) => note(`kernel status ${status}`);
  const onConnection = (_k, status) => note(`kernel connection ${status}`);
  const onDisposed = () => {
    note('kernel connection disposed');
    lost('kernel shut down');
  };
  if (kernel) {
    kernel.statusChanged.connect(onStatus);
    kernel.connectionStatusChanged.connect(onConnection);
    kernel.disposed.connect(onDisposed);
  }
  signal?.addEventListener('abort', () => note(`signal aborted: ${signal.reason}`));

  // Changes in what can be polled without traffic: the manager's kernel, the comm, the DOM.
  let last = '';
  const timer = setInterval(() => {
    const now = manager ? manager.kernel : undefined;
    const state =
      `${now === kernel ? 'same kernel object' : 'kernel object changed'}; ${describeKernel(now)}; ` +
      `${view ? describeComm(view) : ''}; el ${describeElement(el)}`;
    if (state !== last) note(`poll: ${state}`);
    last = state;
    // Rendered from saved widget state (no comm): act once the view is in the page.
    if (el.isConnected && el.classList.contains('jupyter-widgets-disconnected')) {
      lost('not connected to a kernel');
    }
  }, 250);

  // The test calls this to see whether model.send works now.
  (window.__lifecycleSend ??= {})[label] = () => {
    try {
      model.send({ ping: performance.now() });
      const services = view && view.model.comm && view.model.comm.jsServicesComm;
      note(`send: ok${services && services.subshellId ? ` (subshell ${services.subshellId})` : ''}`);
      return 'ok';
    } catch (error) {
      note(`send threw: ${error && error.message}`);
      return `threw: ${error && error.message}`;
    }
  };
  (window.__lifecycleCount ??= {})[label] = () => count;

  return () => {
    clearInterval(timer);
    if (kernel) {
      kernel.statusChanged.disconnect(onStatus);
      kernel.connectionStatusChanged.disconnect(onConnection);
      kernel.disposed.disconnect(onDisposed);
    }
    note('cleanup called');
  };
}

export default { render };
