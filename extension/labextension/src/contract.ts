/**
 * The page-level contract between the `%%codex` widget (an anywidget view inside a cell's
 * output) and this extension. docs/labextension.md is the reference; this module is the one
 * place that spells out names, shapes and limits, and it has no JupyterLab imports.
 *
 * The widget dispatches a CustomEvent (bubbles: true, composed: true) from an element in its
 * output. The notebook panel that contains that element handles it synchronously and writes
 * the outcome into `event.detail`: `handled: true` on success, or `handled: false` and
 * `error: "<why>"`. A widget that finds `handled !== true` after `dispatchEvent` returns knows
 * nothing happened (no extension, or an output outside any notebook) and falls back.
 */

/** Insert a new code cell holding `detail.code` directly below the cell that holds the target. */
export const INSERT_CELL = 'codex-notebook:insert-cell';

/** Replace the output item that holds the target with a display_data of `detail.data`. */
export const REPLACE_OUTPUT = 'codex-notebook:replace-output';

/** `document.documentElement.dataset[PAGE_MARK]` holds the extension's version when active. */
export const PAGE_MARK = 'codexNotebookExtension';

/** The cell and output metadata key under which codex-notebook records provenance. */
export const METADATA_KEY = 'codex_notebook';

/** Limits that keep one event from bloating a notebook (both far above what a turn produces). */
export const MAX_CODE_CHARS = 1_000_000;
export const MAX_SOURCE_CHARS = 200;
export const MAX_OUTPUT_CHARS = 5_000_000;

/** At most this many proposals of one output get buttons (a turn proposes a handful). */
export const MAX_PROPOSALS = 50;
/** Longer turn ids are left out of an inserted cell's provenance (`source`). */
const MAX_TURN_ID_CHARS = 120;

/** The mime types a replacement output may carry: text/plain is required. */
export const REPLACE_MIME_TYPES = ['text/plain', 'text/html', 'text/markdown'] as const;

/** What the extension writes back into `event.detail`. */
export interface IOutcome {
  handled: boolean;
  error?: string;
}

export interface IInsertRequest {
  code: string;
  source?: string;
}

export interface IReplaceRequest {
  data: { 'text/plain': string; 'text/html'?: string; 'text/markdown'?: string };
  metadata: { [key: string]: unknown };
}

/** A request that could not be read: the message says what was wrong. */
export class ContractError extends Error {}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.getPrototypeOf(value) === Object.prototype
  );
}

/**
 * A JSON object as JupyterLab hands out output metadata: the top level is made with
 * `Object.create(null)` (rendermime's OutputModel), the values inside by JSON.parse.
 */
function isJsonObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return false;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === null || prototype === Object.prototype;
}

/** Read an insert-cell detail; throws ContractError naming the bad field. */
export function parseInsert(detail: unknown): IInsertRequest {
  if (!isPlainObject(detail)) {
    throw new ContractError(`${INSERT_CELL}: event.detail must be an object`);
  }
  const { code, source } = detail;
  if (typeof code !== 'string') {
    throw new ContractError(`${INSERT_CELL}: detail.code must be a string`);
  }
  if (code.length > MAX_CODE_CHARS) {
    throw new ContractError(
      `${INSERT_CELL}: detail.code has ${code.length} characters (limit ${MAX_CODE_CHARS})`
    );
  }
  if (source !== undefined && typeof source !== 'string') {
    throw new ContractError(`${INSERT_CELL}: detail.source must be a string when given`);
  }
  if (source !== undefined && source.length > MAX_SOURCE_CHARS) {
    throw new ContractError(
      `${INSERT_CELL}: detail.source has ${source.length} characters (limit ${MAX_SOURCE_CHARS})`
    );
  }
  return source === undefined ? { code } : { code, source };
}

/**
 * Read a replace-output detail; throws ContractError naming the bad field.
 *
 * text/markdown is only accepted next to text/html: every notebook frontend prefers HTML, and
 * the HTML is what this extension sanitizes, so the markdown is never what renders here.
 */
export function parseReplace(detail: unknown): IReplaceRequest {
  if (!isPlainObject(detail)) {
    throw new ContractError(`${REPLACE_OUTPUT}: event.detail must be an object`);
  }
  const { data, metadata } = detail;
  if (!isPlainObject(data)) {
    throw new ContractError(`${REPLACE_OUTPUT}: detail.data must be an object of mime type → text`);
  }
  const allowed: readonly string[] = REPLACE_MIME_TYPES;
  for (const [mime, value] of Object.entries(data)) {
    if (!allowed.includes(mime)) {
      throw new ContractError(
        `${REPLACE_OUTPUT}: detail.data has ${JSON.stringify(mime)}; ` +
          `allowed: ${REPLACE_MIME_TYPES.join(', ')}`
      );
    }
    if (typeof value !== 'string') {
      throw new ContractError(`${REPLACE_OUTPUT}: detail.data[${JSON.stringify(mime)}] must be a string`);
    }
  }
  if (typeof data['text/plain'] !== 'string') {
    throw new ContractError(`${REPLACE_OUTPUT}: detail.data must have "text/plain"`);
  }
  if (data['text/markdown'] !== undefined && data['text/html'] === undefined) {
    throw new ContractError(
      `${REPLACE_OUTPUT}: "text/markdown" needs "text/html" beside it (the HTML is what renders)`
    );
  }
  if (metadata !== undefined && !isPlainObject(metadata)) {
    throw new ContractError(`${REPLACE_OUTPUT}: detail.metadata must be an object when given`);
  }
  let size: number;
  let meta: { [key: string]: unknown };
  try {
    // A JSON round trip: what is saved is exactly what JSON can hold.
    meta = JSON.parse(JSON.stringify(metadata ?? {}));
    size = JSON.stringify(data).length + JSON.stringify(meta).length;
  } catch (error) {
    throw new ContractError(`${REPLACE_OUTPUT}: detail.metadata is not JSON: ${String(error)}`);
  }
  if (size > MAX_OUTPUT_CHARS) {
    throw new ContractError(
      `${REPLACE_OUTPUT}: the output has ${size} characters of JSON (limit ${MAX_OUTPUT_CHARS})`
    );
  }
  return { data: { ...data } as IReplaceRequest['data'], metadata: meta };
}

/**
 * Write the outcome into the event's detail (the widget reads it right after dispatchEvent
 * returns) and cancel the event on success, for widgets that dispatch it cancelable.
 */
export function report(event: Event, outcome: IOutcome): void {
  const detail = (event as CustomEvent<unknown>).detail;
  if (isPlainObject(detail) && Object.isExtensible(detail)) {
    detail.handled = outcome.handled;
    if (outcome.error !== undefined) {
      detail.error = outcome.error;
    } else {
      delete detail.error;
    }
  }
  if (outcome.handled) {
    event.preventDefault();
  }
}

/** One cell the agent proposed in a turn: "Proposed cell `number`" in the static rendering. */
export interface IProposal {
  number: number;
  code: string;
  /** Provenance for the inserted cell's metadata (`inserted_from`). */
  source: string;
}

/**
 * The proposals an output's metadata lists, for the buttons under it:
 * `metadata.codex_notebook.proposals = [{"number": 1, "code": "..."}, ...]`, written by the
 * kernel with a turn's final rendering (`Turn.provenance()`), next to `turn_id`.
 *
 * The metadata comes from a notebook file, which anyone may have edited: anything that is not
 * that shape is left out (an entry without a positive integer `number` or a string `code`, code
 * over MAX_CODE_CHARS, entries past MAX_PROPOSALS). Never throws; [] means "no buttons".
 */
export function readProposals(metadata: unknown): IProposal[] {
  const ours = isJsonObject(metadata) ? metadata[METADATA_KEY] : undefined;
  if (!isJsonObject(ours) || !Array.isArray(ours.proposals)) {
    return [];
  }
  const turn =
    typeof ours.turn_id === 'string' && ours.turn_id.length <= MAX_TURN_ID_CHARS
      ? ours.turn_id
      : '';
  const found: IProposal[] = [];
  for (const entry of ours.proposals as unknown[]) {
    if (found.length >= MAX_PROPOSALS) {
      break;
    }
    if (!isJsonObject(entry)) {
      continue;
    }
    const { number, code } = entry;
    if (
      typeof number !== 'number' ||
      !Number.isSafeInteger(number) ||
      number < 1 ||
      typeof code !== 'string' ||
      code.length > MAX_CODE_CHARS
    ) {
      continue;
    }
    const source = turn ? `turn ${turn}, proposal ${number}` : `proposal ${number}`;
    found.push({ number, code, source });
  }
  return found;
}
