/**
 * The two things the widget can ask for, done on the notebook model (so they are saved and
 * seen by every view of the notebook), never on the DOM alone.
 */

import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import type * as nbformat from '@jupyterlab/nbformat';

import { ContractError, METADATA_KEY, type IInsertRequest, type IReplaceRequest } from './contract';
import type { IOutputLocation } from './locate';

function writable(where: IOutputLocation): void {
  const model = where.notebook.model;
  if (!model) {
    throw new ContractError('the notebook has no model');
  }
  if (model.readOnly) {
    throw new ContractError('the notebook is read-only');
  }
}

/**
 * Insert a code cell holding exactly `request.code` right below the located cell (not run),
 * make it the active cell and scroll it into view. Returns the new cell's index.
 */
export function insertBelow(where: IOutputLocation, request: IInsertRequest): number {
  writable(where);
  const { notebook } = where;
  // Look the cell up again: an earlier insertion above may have moved it.
  const current = notebook.widgets.indexOf(where.cell);
  if (current < 0) {
    throw new ContractError('the cell is no longer in the notebook');
  }
  const index = current + 1;
  const metadata: Partial<nbformat.IBaseCellMetadata> =
    request.source === undefined ? {} : { [METADATA_KEY]: { inserted_from: request.source } };
  notebook.model!.sharedModel.insertCell(index, {
    cell_type: 'code',
    source: request.code,
    metadata: metadata as nbformat.IBaseCellMetadata
  });
  notebook.deselectAll();
  notebook.activeCellIndex = index;
  // Command mode on the new cell: Enter edits it, Shift+Enter runs it.
  notebook.mode = 'command';
  void notebook.scrollToItem(index, 'smart');
  return index;
}

/**
 * Replace the located output item with a display_data carrying `request.data`, whose HTML is
 * first passed through the application's sanitizer (the one JupyterLab uses for untrusted
 * output): the cell may be trusted now or after a reload, and no script in it may ever run.
 */
export function replaceOutput(
  where: IOutputLocation,
  request: IReplaceRequest,
  sanitizer: IRenderMime.ISanitizer
): void {
  writable(where);
  const outputs = where.cell.model.outputs;
  if (where.outputIndex >= outputs.length) {
    throw new ContractError('the output is no longer there');
  }
  const data: nbformat.IMimeBundle = { ...request.data };
  const html = request.data['text/html'];
  if (html !== undefined) {
    data['text/html'] = sanitizer.sanitize(html);
  }
  const output: nbformat.IDisplayData = {
    output_type: 'display_data',
    data,
    metadata: request.metadata as nbformat.OutputMetadata
  };
  outputs.set(where.outputIndex, output);
}
