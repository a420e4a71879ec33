/**
 * Keep a ProposalBar under every output item of a notebook whose metadata lists proposals.
 *
 * Driven by the notebook's own signals, never by watching the DOM:
 * - the notebook's model and its cell list: every code cell widget is followed once;
 * - each cell's `OutputArea.outputLengthChanged`, which the output area emits after it has
 *   updated its children for any change of its model (an output added, replaced by display id,
 *   re-rendered, its metadata or trust changed, cleared; "show more outputs").
 *
 * Each output item is a Lumino panel (`.jp-OutputArea-child`: prompt, rendered output); the
 * bar is added to it as a third child. An item the output area re-renders in place keeps its
 * bar (same proposals: nothing to do); one it replaces takes the old bar with it, and the sync
 * that follows adds a new one; a cleared output disposes of the item and its bar.
 *
 * All of it runs on the page's one thread; connections are made with the notebook or the
 * cell as receiver, so they go when those widgets are disposed.
 */

import type { Cell, CodeCell } from '@jupyterlab/cells';
import type { Notebook } from '@jupyterlab/notebook';
import type { OutputArea } from '@jupyterlab/outputarea';
import { Panel } from '@lumino/widgets';

import { readProposals, type IProposal } from './contract';
import { HOST_CLASS, ProposalBar, type IProposalActions } from './proposalbar';

/** The cells already followed (a cell widget belongs to one notebook for its lifetime). */
const followed = new WeakSet<Cell>();

/** Add, keep, replace or remove the bar of every output item of `area`. */
export function syncOutputArea(area: OutputArea, actions: IProposalActions): void {
  const shown = Math.min(area.model.length, area.maxNumberOutputs);
  area.widgets.forEach((child, index) => {
    // Past `shown`: the "show more outputs" notice, or a pending input() prompt.
    if (child instanceof Panel) {
      const proposals = index < shown ? readProposals(area.model.get(index).metadata) : [];
      syncItem(child, proposals.length ? proposals : null, actions);
    }
  });
}

function syncItem(item: Panel, proposals: IProposal[] | null, actions: IProposalActions): void {
  const bars = item.widgets.filter((child): child is ProposalBar => child instanceof ProposalBar);
  const key = proposals ? ProposalBar.keyOf(proposals) : null;
  // Keep one bar showing these proposals, if there is one; dispose of the rest.
  const keep = bars.find(bar => bar.key === key);
  for (const bar of bars) {
    if (bar !== keep) {
      bar.dispose();
    }
  }
  if (proposals && !keep) {
    item.addWidget(new ProposalBar(proposals, actions));
  }
  item.toggleClass(HOST_CLASS, proposals !== null);
}

function followCell(cell: Cell, actions: IProposalActions): void {
  if (followed.has(cell) || cell.model.type !== 'code') {
    return;
  }
  followed.add(cell);
  const area = (cell as CodeCell).outputArea;
  area.outputLengthChanged.connect(() => syncOutputArea(area, actions), cell);
  syncOutputArea(area, actions);
}

/**
 * Follow every code cell of `notebook`, now and as cells are added (opening a file, undo,
 * paste, revert) or the notebook's model is replaced.
 */
export function followNotebook(notebook: Notebook, actions: IProposalActions): void {
  // The notebook inserts its cell widgets in its own handler of the same signal, which was
  // connected first (when the panel was made): they exist when this runs.
  const followAll = (): void => {
    for (const cell of notebook.widgets) {
      followCell(cell, actions);
    }
  };
  let model = notebook.model;
  model?.cells.changed.connect(followAll, notebook);
  notebook.modelChanged.connect(() => {
    model?.cells.changed.disconnect(followAll, notebook);
    model = notebook.model;
    model?.cells.changed.connect(followAll, notebook);
    followAll();
  }, notebook);
  followAll();
}
