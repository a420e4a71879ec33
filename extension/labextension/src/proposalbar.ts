/**
 * The buttons under a finished turn's output: "Insert cell N below" and "Copy" for every cell
 * the agent proposed.
 *
 * Built here, with createElement and textContent only, from the output's metadata (see
 * readProposals in ./contract.ts) — never from the output's HTML, which is untrusted and
 * sanitized: nothing in it can add, change or click these buttons.
 */

import { Widget } from '@lumino/widgets';

import { ContractError, type IProposal } from './contract';

/** The class of the bar. */
export const BAR_CLASS = 'cxn-proposals';
/** The class of an output item (`.jp-OutputArea-child`) that holds a bar. */
export const HOST_CLASS = 'cxn-proposals-host';

/** What the buttons do; both report failure by throwing (the message is shown). */
export interface IProposalActions {
  /** Insert the proposal as a new code cell below the cell that holds `bar`. */
  insert(bar: ProposalBar, proposal: IProposal): void;
  /** Put `text` on the system clipboard. */
  copy(text: string): Promise<void>;
}

/** Characters of the code's first line shown next to the buttons. */
const PREVIEW_CHARS = 72;
/** Characters of the code shown when the pointer rests on the preview. */
const TOOLTIP_CHARS = 4000;

/**
 * Invisible and direction-changing characters ("Trojan Source": bidi marks, embeddings,
 * overrides and isolates, zero-width characters, invisible operators, blank-looking fillers,
 * tag characters): the same set as the kernel's `text.reveal_invisible`.
 */
const INVISIBLE =
  /[\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0]|\udb40[\udc00-\udc7f]/g;

/** `text` with each invisible character written as `⟨U+202E⟩`: code reads as it runs. */
export function revealInvisible(text: string): string {
  return text.replace(INVISIBLE, ch => {
    const code = ch.codePointAt(0) ?? 0;
    return `⟨U+${code.toString(16).toUpperCase().padStart(4, '0')}⟩`;
  });
}

/** The first non-blank line of `code`, shortened, and how many non-blank lines follow it. */
export function preview(code: string): string {
  const lines = code.split('\n');
  const first = lines.findIndex(line => line.trim() !== '');
  if (first < 0) {
    return '(empty cell)';
  }
  let line = revealInvisible(lines[first].trimEnd());
  if (line.length > PREVIEW_CHARS) {
    line = `${line.slice(0, PREVIEW_CHARS - 1)}…`;
  }
  const rest = lines.slice(first + 1).filter(text => text.trim() !== '').length;
  return rest > 0 ? `${line}  (+${rest} more line${rest === 1 ? '' : 's'})` : line;
}

/**
 * A button of the bar. Keys typed while it has focus are not notebook shortcuts (D D on a
 * focused Copy button must not delete the cell): Lumino skips bindings for an element marked
 * so — the button itself, as the notebook's selectors (`… :focus`) match the button first.
 */
function button(className: string, text: string, title: string): HTMLButtonElement {
  const node = element('button', `cxn-proposals-button ${className}`.trim(), text);
  node.type = 'button';
  node.title = title;
  node.setAttribute('data-lm-suppress-shortcuts', 'true');
  return node;
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/**
 * One bar per output item. It remembers what it was built from (`key`), so a re-render of the
 * same output keeps it, and different proposals replace it.
 */
export class ProposalBar extends Widget {
  /** Identifies the proposals this bar shows: equal keys, same buttons. */
  static keyOf(proposals: readonly IProposal[]): string {
    return JSON.stringify(proposals);
  }

  readonly key: string;
  private readonly _status: HTMLElement;

  constructor(proposals: readonly IProposal[], actions: IProposalActions) {
    super();
    this.key = ProposalBar.keyOf(proposals);
    this.addClass(BAR_CLASS);
    const node = this.node;
    node.setAttribute('role', 'group');
    node.setAttribute(
      'aria-label',
      proposals.length === 1 ? 'Cell proposed by codex' : 'Cells proposed by codex'
    );
    for (const proposal of proposals) {
      node.append(this._row(proposal, actions));
    }
    this._status = element('span', 'cxn-proposals-status');
    this._status.setAttribute('role', 'status');
    node.append(this._status);
  }

  private _row(proposal: IProposal, actions: IProposalActions): HTMLElement {
    const { number, code } = proposal;
    const row = element('div', 'cxn-proposals-row');
    const insert = button(
      'cxn-proposals-insert',
      `Insert cell ${number} below`,
      `Put proposed cell ${number} into a new code cell below this one (it does not run)`
    );
    insert.addEventListener('click', () => {
      try {
        actions.insert(this, proposal);
        this._say(`Inserted cell ${number} below.`);
      } catch (error) {
        this._say(`Could not insert cell ${number}: ${message(error)}`, true);
        if (!(error instanceof ContractError)) {
          console.error('codex-notebook: inserting a proposed cell failed', error);
        }
      }
    });
    const copy = button('', 'Copy', `Copy the code of proposed cell ${number}`);
    copy.setAttribute('aria-label', `Copy cell ${number}`);
    copy.addEventListener('click', () => {
      actions.copy(code).then(
        () => this._say(`Copied cell ${number}.`),
        error => this._say(`Could not copy cell ${number}: ${message(error)}`, true)
      );
    });
    const shown = element('code', 'cxn-proposals-preview', preview(code));
    const whole = revealInvisible(code);
    shown.title = whole.length > TOOLTIP_CHARS ? `${whole.slice(0, TOOLTIP_CHARS)}…` : whole;
    row.append(insert, copy, shown);
    return row;
  }

  private _say(text: string, error = false): void {
    if (this.isDisposed) {
      return;
    }
    this._status.textContent = text;
    this._status.classList.toggle('cxn-mod-error', error);
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
