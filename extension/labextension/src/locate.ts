/**
 * From a DOM element inside a cell's output to the notebook objects that own it.
 *
 * Everything is found by DOM containment, starting from the panel whose node received the
 * event: a notebook opened in two panels has two DOM trees over one model, and only the panel
 * the element lives in is the one the user is looking at.
 */

import type { CodeCell } from '@jupyterlab/cells';
import type { Notebook } from '@jupyterlab/notebook';

import { ContractError } from './contract';

export interface IOutputLocation {
  /** The notebook widget (of the panel that holds the element). */
  notebook: Notebook;
  /** The code cell whose output area holds the element. */
  cell: CodeCell;
  /** The cell's position in the notebook. */
  cellIndex: number;
  /** The position, in the cell's output model, of the output item that holds the element. */
  outputIndex: number;
}

/**
 * The element the event came from, as seen by a listener on the panel: inside a shadow root
 * (a widget may render into one) `event.target` is retargeted to the shadow host, which is in
 * the panel's own tree and inside the same output; composedPath()[0] would not be, and
 * Node.contains does not look into shadow roots.
 */
export function eventOrigin(event: Event): Node | null {
  return event.target instanceof Node ? event.target : null;
}

/** Find the code cell and the output item of `notebook` that contain `origin`. */
export function locateOutput(notebook: Notebook, origin: Node | null): IOutputLocation {
  if (!origin || !notebook.node.contains(origin)) {
    throw new ContractError('the event did not come from this notebook');
  }
  const cellIndex = notebook.widgets.findIndex(cell => cell.node.contains(origin));
  if (cellIndex < 0) {
    throw new ContractError('the event did not come from a cell');
  }
  const cell = notebook.widgets[cellIndex];
  if (cell.model.type !== 'code') {
    throw new ContractError('the event did not come from a code cell');
  }
  const codeCell = cell as CodeCell;
  const area = codeCell.outputArea;
  if (!area.node.contains(origin)) {
    throw new ContractError("the event did not come from the cell's output");
  }
  // The output area's children are one panel per output item, in model order; past
  // maxNumberOutputs it shows a "show more" notice instead, which holds no output.
  const outputIndex = area.widgets.findIndex(child => child.node.contains(origin));
  const shown = Math.min(area.model.length, area.maxNumberOutputs);
  if (outputIndex < 0 || outputIndex >= shown) {
    throw new ContractError('the event did not come from an output item');
  }
  return { notebook, cell: codeCell, cellIndex, outputIndex };
}
