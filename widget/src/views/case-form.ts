/**
 * "Post a case": the question, an age band and a sex (never a name), and optionally one image, which
 * is de-identified on this device before it is encrypted (the note of what was removed shows once it
 * is posted). An image whose metadata cannot be removed here (HEIC, AVIF, GIF, TIFF), or a file that is
 * no image, is refused before anything is sent: a case goes to every member of a pool. Says plainly that the hub never sees the case and that it goes to the pool's members of
 * the moment.
 *
 * "Post pseudonymously" sends the case as "a verified <specialty>", spending one of this device's
 * pseudonym tokens; a short note says what that hides and what it does not. When the form opens it
 * picks up the tokens the office signed since they were asked for and says how many are left; with
 * none, the toggle is disabled and "Ask the office for tokens" asks for a batch. A pseudonymous case
 * takes no image (its upload would name the asker): one is refused here, before anything is sent.
 */
import { AGE_BANDS, SEXES, detectImageFormat, type AgeBand, type AttachmentDescriptor, type Sex } from '@curbside/client-sdk';
import { h, setBusy } from '../dom.js';
import type { ViewContext } from '../context.js';
import type { TokenCount } from '../consult-session.js';
import { ageBandText, plainError, sexText } from '../words.js';

/** Why an image cannot go with a case (its metadata could not be removed on this device), or undefined. */
async function imageRefusal(file: File): Promise<string | undefined> {
  const format = detectImageFormat(new Uint8Array(await file.slice(0, 512).arrayBuffer()));
  if (format === 'jpeg' || format === 'png' || format === 'webp') return undefined;
  if (!format) return 'Not posted: a case takes an image (JPEG, PNG or WebP), and this file is none.';
  return `Not posted: the metadata of this ${format.toUpperCase()} image (where and when it was taken, the device) cannot be removed on this device. Attach a JPEG, PNG or WebP image instead (export or screenshot it first).`;
}

export class CaseForm {
  readonly element: HTMLFormElement;
  private readonly question: HTMLTextAreaElement;
  private readonly ageBand: HTMLSelectElement;
  private readonly sex: HTMLSelectElement;
  private readonly image: HTMLInputElement;
  private readonly progress: HTMLProgressElement;
  private readonly error: HTMLParagraphElement;
  private readonly submit: HTMLButtonElement;
  private readonly pseudonymous: HTMLInputElement;
  private readonly pseudonymLabel: HTMLSpanElement;
  private readonly pseudonymNote: HTMLParagraphElement;
  private readonly tokenStatus: HTMLParagraphElement;
  private readonly askTokens: HTMLButtonElement;
  /** The specialty the toggle posts as: that of this device's tokens, else of its credential. */
  private specialty: string | undefined;
  /** The last token count asked for (an older answer arriving later is dropped). */
  private tokenAsk = 0;

  constructor(
    private readonly ctx: ViewContext,
    private readonly poolId: () => string | undefined,
    /** Posted (with the image's attachment as sealed, if any, or the specialty it was posted as pseudonymously), or cancelled (`undefined`). */
    private readonly done: (posted: { attachment?: AttachmentDescriptor; pseudonymous?: string } | undefined) => void,
  ) {
    const { uid } = ctx;
    this.question = h('textarea', { name: 'question', rows: '3', required: true, maxlength: '4000', 'aria-describedby': `${uid}-case-note` });
    const choose = () => h('option', { value: '' }, 'Choose…');
    this.ageBand = h('select', { name: 'age-band', required: true }, choose(), ...AGE_BANDS.map((b) => h('option', { value: b }, ageBandText(b))));
    this.sex = h('select', { name: 'sex', required: true }, choose(), ...SEXES.map((s) => h('option', { value: s }, sexText(s))));
    this.image = h('input', { type: 'file', name: 'image', accept: 'image/jpeg,image/png,image/webp', 'aria-describedby': `${uid}-case-image-help` });
    this.progress = h('progress', { max: '1', value: '0', hidden: true, 'aria-label': 'Uploading the image' });
    this.error = h('p', { class: 'form-error', role: 'alert' });
    this.submit = h('button', { type: 'submit', class: 'primary' }, 'Post case');
    const cancel = h('button', { type: 'button' }, 'Cancel');
    this.pseudonymous = h('input', { type: 'checkbox', name: 'pseudonymous', disabled: true, 'aria-describedby': `${uid}-pseudonym-note ${uid}-pseudonym-tokens` });
    this.pseudonymLabel = h('span', {});
    this.pseudonymNote = h('p', { class: 'pool-note', id: `${uid}-pseudonym-note` });
    this.tokenStatus = h('p', { class: 'pool-note token-status', id: `${uid}-pseudonym-tokens`, role: 'status' });
    this.askTokens = h('button', { type: 'button', class: 'ask-tokens', hidden: true }, 'Ask the office for tokens');
    this.name();
    this.element = h(
      'form',
      { class: 'case-form', id: `${uid}-case-form`, hidden: true, 'aria-label': 'Post a case' },
      h(
        'p',
        { class: 'pool-note', id: `${uid}-case-note` },
        'The case is end-to-end encrypted to the pool’s current members: the hub never sees it, and clinicians who join later do not get it. Give no name or other identifier.',
      ),
      h('label', {}, 'Question', this.question),
      h('div', { class: 'case-choices' }, h('label', {}, 'Age band', this.ageBand), h('label', {}, 'Sex', this.sex)),
      h('label', {}, 'Image (optional)', this.image),
      h('p', { class: 'pool-note', id: `${uid}-case-image-help` }, 'Location, dates, camera and other metadata are removed on this device before the image is encrypted.'),
      h('div', { class: 'pseudonym-slot' }, h('label', { class: 'pseudonym-toggle' }, this.pseudonymous, this.pseudonymLabel), this.pseudonymNote, this.tokenStatus, this.askTokens),
      this.progress,
      this.error,
      h('div', { class: 'actions' }, this.submit, cancel),
    );
    this.element.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.post();
    });
    this.askTokens.addEventListener('click', () => void this.requestTokens());
    cancel.addEventListener('click', () => {
      this.reset();
      this.done(undefined);
    });
  }

  focus(): void {
    this.question.focus();
  }

  /** The form opened: pick up the tokens the office signed meanwhile, and say how many are left. */
  async opened(): Promise<void> {
    const consults = this.ctx.consults();
    if (!consults) return;
    const ask = ++this.tokenAsk;
    this.tokenStatus.textContent = 'Looking for pseudonymous tokens on this device…';
    let counts: TokenCount[];
    let waiting = 0;
    try {
      counts = await consults.tokens();
      waiting = await consults.waitingTokens();
    } catch (e) {
      if (ask !== this.tokenAsk) return;
      this.showTokens(0);
      this.tokenStatus.textContent = `Pseudonymous tokens could not be picked up: ${plainError(e)}`;
      return;
    }
    if (ask !== this.tokenAsk) return;
    const held = counts.filter((t) => t.count > 0);
    // Post as the specialty with the most tokens (a clinician has one credential, so one specialty).
    const specialty = held.sort((a, b) => b.count - a.count)[0]?.specialty;
    const count = held.filter((t) => t.specialty === specialty).reduce((n, t) => n + t.count, 0);
    this.showTokens(count, specialty);
    // Asked for already (before a reload, say): say so rather than offer to ask again.
    if (count === 0 && waiting > 0) {
      this.askTokens.hidden = true;
      this.tokenStatus.textContent = `${waiting} pseudonymous token${waiting === 1 ? '' : 's'} asked for, waiting for the credentialing office to sign them.`;
    }
  }

  reset(): void {
    this.element.reset();
    this.error.textContent = '';
    this.progress.hidden = true;
  }

  private async post(): Promise<void> {
    const consults = this.ctx.consults();
    const poolId = this.poolId();
    const question = this.question.value.trim();
    if (!consults || !poolId || !question || !this.ageBand.value || !this.sex.value || !setBusy(this.submit, true)) return;
    const file = this.image.files?.[0];
    const pseudonymous = this.pseudonymous.checked && !this.pseudonymous.disabled ? this.specialty : undefined;
    this.error.textContent = '';
    const refusal =
      pseudonymous !== undefined && file
        ? 'Not posted: a pseudonymous case takes no image, because uploading it would tell the hub who you are. Remove the image, or post under your name.'
        : file
          ? await imageRefusal(file)
          : undefined;
    if (refusal) {
      this.error.textContent = refusal;
      setBusy(this.submit, false);
      return;
    }
    this.progress.value = 0;
    this.progress.hidden = !file;
    try {
      const draft = { question, ageBand: this.ageBand.value as AgeBand, sex: this.sex.value as Sex, ...(pseudonymous !== undefined ? { pseudonymous } : file ? { image: file } : {}) };
      const attachment = await consults.postCase(poolId, draft, (done) => (this.progress.value = done));
      this.reset();
      this.done(attachment ? { attachment } : pseudonymous !== undefined ? { pseudonymous } : {});
    } catch (e) {
      this.progress.hidden = true;
      this.error.textContent = `Not posted: ${plainError(e)}`;
    } finally {
      setBusy(this.submit, false);
    }
  }

  /** Name the toggle and its note after the specialty it posts as (that of the tokens, else of the credential). */
  private name(specialty?: string): void {
    const me = this.ctx.state.me.sub;
    this.specialty = specialty ?? this.specialty ?? (me ? this.ctx.state.people.verified(me)?.specialty : undefined);
    const as = this.specialty ? `“a verified ${this.specialty}”` : 'a verified clinician of your specialty';
    this.pseudonymLabel.textContent = `Post pseudonymously — as ${as}`;
    this.pseudonymNote.textContent = `Members see only ${as}, not your name. The hub records no account for the post, but it does see your network address. No image, and the case cannot move to a private chat. Each case uses one token.`;
  }

  /** Say how many tokens are left; with none, the toggle is off and the office can be asked for more. */
  private showTokens(count: number, specialty?: string): void {
    this.name(specialty);
    this.pseudonymous.disabled = count === 0;
    if (count === 0) this.pseudonymous.checked = false;
    this.askTokens.hidden = count > 0;
    this.tokenStatus.textContent = count ? `${count} pseudonymous token${count === 1 ? '' : 's'} left on this device.` : 'No pseudonymous tokens on this device.';
  }

  /** Ask the office for a batch of tokens: they come once it signs them, which takes someone at the office. */
  private async requestTokens(): Promise<void> {
    const consults = this.ctx.consults();
    if (!consults || !setBusy(this.askTokens, true)) return;
    this.error.textContent = '';
    try {
      const { specialty, count } = await consults.requestTokens();
      this.name(specialty);
      this.tokenStatus.textContent = `Asked the credentialing office for ${count} ${specialty} tokens. They arrive once the office signs them; this form picks them up when you open it again.`;
    } catch (e) {
      this.error.textContent = `No tokens asked for: ${plainError(e)}`;
    } finally {
      setBusy(this.askTokens, false);
    }
  }
}
