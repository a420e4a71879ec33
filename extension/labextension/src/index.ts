/**
 * codex-notebook's frontend extension for JupyterLab 4 and Notebook 7.
 *
 * It listens, on every notebook panel, for the two events the `%%codex` widget dispatches from
 * inside its output (see ./contract.ts and docs/labextension.md), and marks the page so the
 * widget offers "Insert below" only when it will work. Each panel handles the events that
 * bubble up from its own DOM, so a notebook shown in two panels is changed through the panel
 * the user clicked in.
 *
 * Once a turn has ended, its widget is replaced by a static rendering whose HTML can carry no
 * buttons; the cells it proposed are listed in the output's metadata, and ./follow.ts puts
 * "Insert cell N below" / "Copy" buttons under every such output (./proposalbar.ts).
 */

import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Clipboard, ISanitizer } from '@jupyterlab/apputils';
import { INotebookTracker, type NotebookPanel } from '@jupyterlab/notebook';
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { insertBelow, replaceOutput } from './actions';
import {
  ContractError,
  INSERT_CELL,
  PAGE_MARK,
  parseInsert,
  parseReplace,
  REPLACE_OUTPUT,
  report
} from './contract';
import { followNotebook } from './follow';
import { eventOrigin, locateOutput } from './locate';
import type { IProposalActions } from './proposalbar';
import { VERSION } from './version';

/** Run `action` for `event` and write its outcome into `event.detail`; never throws. */
function handle(event: Event, action: () => void): void {
  try {
    action();
    report(event, { handled: true });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    report(event, { handled: false, error: message });
    if (!(error instanceof ContractError)) {
      console.error(`codex-notebook: ${event.type} failed`, error);
    }
  }
}

/**
 * Put `text` on the system clipboard: the asynchronous Clipboard API where the page may use it
 * (a secure context: https, localhost), else JupyterLab's copy-event fallback.
 */
async function copyText(text: string): Promise<void> {
  if (window.isSecureContext && navigator.clipboard) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch {
      // Denied (the page lost focus, a policy): the copy-event path may still work.
    }
  }
  Clipboard.copyToSystem(text);
}

/** What the proposal buttons under the outputs of `panel` do. */
function proposalActions(panel: NotebookPanel): IProposalActions {
  return {
    // The same path as the widget's insert-cell event: found by DOM containment from the bar.
    insert: (bar, proposal) =>
      void insertBelow(locateOutput(panel.content, bar.node), {
        code: proposal.code,
        source: proposal.source
      }),
    copy: copyText
  };
}

/** The panels already listened on (the tracker could announce a panel more than once). */
const watched = new WeakSet<NotebookPanel>();

/** Listen on one panel's node; the listeners go with the node when the panel is disposed. */
function watchPanel(panel: NotebookPanel, sanitizer: IRenderMime.ISanitizer): void {
  if (watched.has(panel)) {
    return;
  }
  watched.add(panel);
  panel.node.addEventListener(INSERT_CELL, event => {
    handle(event, () => {
      const request = parseInsert((event as CustomEvent<unknown>).detail);
      insertBelow(locateOutput(panel.content, eventOrigin(event)), request);
    });
  });
  panel.node.addEventListener(REPLACE_OUTPUT, event => {
    handle(event, () => {
      const request = parseReplace((event as CustomEvent<unknown>).detail);
      replaceOutput(locateOutput(panel.content, eventOrigin(event)), request, sanitizer);
    });
  });
  followNotebook(panel.content, proposalActions(panel));
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'codex-notebook:plugin',
  description:
    'Insert cells proposed by the %%codex widget or listed under a finished turn; keep a readable output when its kernel is gone.',
  autoStart: true,
  requires: [INotebookTracker, ISanitizer],
  activate: (
    _app: JupyterFrontEnd,
    tracker: INotebookTracker,
    sanitizer: IRenderMime.ISanitizer
  ): void => {
    tracker.forEach(panel => watchPanel(panel, sanitizer));
    tracker.widgetAdded.connect((_tracker, panel) => watchPanel(panel, sanitizer));
    document.documentElement.dataset[PAGE_MARK] = VERSION;
  }
};

export default plugin;
