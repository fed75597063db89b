/**
 * "Post a case": the question, an age band and a sex (never a name), and optionally one image, which
 * is de-identified on this device before it is encrypted (the note of what was removed shows once it
 * is posted). An image whose metadata cannot be removed here (HEIC, AVIF, GIF, TIFF), or a file that is
 * no image, is refused before anything is sent: a case goes to every member of a pool. Says plainly that the hub never sees the case and that it goes to the pool's members of
 * the moment.
 */
import { AGE_BANDS, SEXES, detectImageFormat, type AgeBand, type AttachmentDescriptor, type Sex } from '@curbside/client-sdk';
import { h, setBusy } from '../dom.js';
import type { ViewContext } from '../context.js';
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

  constructor(
    private readonly ctx: ViewContext,
    private readonly poolId: () => string | undefined,
    /** Posted (with the image's attachment as sealed, if any), or cancelled (`undefined`). */
    private readonly done: (posted: { attachment?: AttachmentDescriptor } | undefined) => void,
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
      // Slot for "Post pseudonymously" (as "a verified <specialty>"): pseudonymous tokens are not built yet.
      h('div', { class: 'pseudonym-slot', hidden: true }),
      this.progress,
      this.error,
      h('div', { class: 'actions' }, this.submit, cancel),
    );
    this.element.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.post();
    });
    cancel.addEventListener('click', () => {
      this.reset();
      this.done(undefined);
    });
  }

  focus(): void {
    this.question.focus();
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
    this.error.textContent = '';
    const refusal = file ? await imageRefusal(file) : undefined;
    if (refusal) {
      this.error.textContent = refusal;
      setBusy(this.submit, false);
      return;
    }
    this.progress.value = 0;
    this.progress.hidden = !file;
    try {
      const attachment = await consults.postCase(poolId, { question, ageBand: this.ageBand.value as AgeBand, sex: this.sex.value as Sex, ...(file ? { image: file } : {}) }, (done) => (this.progress.value = done));
      this.reset();
      this.done(attachment ? { attachment } : {});
    } catch (e) {
      this.progress.hidden = true;
      this.error.textContent = `Not posted: ${plainError(e)}`;
    } finally {
      setBusy(this.submit, false);
    }
  }
}
