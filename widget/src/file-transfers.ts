/**
 * Files in the widget (issue #21): an outgoing file's upload, shown as an item with a progress bar, then
 * the message; a received file's download, decryption and checks, then the image full size or the file
 * saved. Failures become plain words on the item.
 */
import type { AttachmentMetadataReport, CurbsideClient } from '@curbside/client-sdk';
import type { HistoryItem } from './history.js';
import { metadataWarning, plainError } from './words.js';

export interface FileTransferDeps {
  client: CurbsideClient;
  /** This user's id. */
  me(): string;
  /** Keep an item and show it. */
  putItem(item: HistoryItem): void;
  view: {
    item(item: HistoryItem): void;
    showImage(url: string, name: string): void;
    /** Say `text` once to screen readers (a polite live region). */
    announce(text: string): void;
  };
}

export class FileTransfers {
  constructor(private readonly deps: FileTransferDeps) {}

  /**
   * Encrypt and send a file: an outgoing item shows its upload progress, then the message; a refusal
   * (too large, quota) or a failure shows on the item in plain words. An image the SDK could not strip
   * (HEIC, AVIF, GIF, TIFF) gets a warning on the item, from the SDK's first progress report, before
   * any byte is uploaded.
   */
  async send(conversationId: string, file: File, caption: string): Promise<void> {
    const localId = `local-${crypto.randomUUID()}`;
    const item: HistoryItem = {
      key: `${conversationId}\n${localId}`,
      conversationId,
      localId,
      kind: 'message',
      senderUserId: this.deps.me() ?? '',
      text: caption,
      outgoing: true,
      at: Date.now(),
      read: true,
      status: 'sending',
      pendingFile: { name: file.name || 'file', size: file.size, mediaType: file.type || 'application/octet-stream' },
      transfer: { phase: 'upload', done: 0 },
    };
    this.deps.putItem(item);
    try {
      const { result, attachment, metadata } = await this.deps.client.attachments.send(conversationId, file, {
        caption,
        name: item.pendingFile!.name,
        mediaType: item.pendingFile!.mediaType,
        onProgress: (p) => {
          if (p.metadata) this.metadataReport(item, p.metadata);
          this.progress(item, p.phase, p.total ? p.bytes / p.total : 0);
        },
      });
      this.metadataReport(item, metadata);
      item.messageId = result.messageId;
      item.seq = result.seq;
      item.attachment = attachment;
      item.status = 'sent';
      delete item.transfer;
      delete item.pendingFile;
    } catch (e) {
      item.status = 'failed';
      item.transfer = { failed: plainError(e) };
    }
    this.deps.putItem(item);
  }

  /** Download, decrypt and check a message's file; an image opens full size, any other file is saved. */
  async open(item: HistoryItem): Promise<void> {
    const a = item.attachment;
    if (!a) return;
    item.transfer = { phase: 'download', done: 0 };
    this.deps.view.item(item);
    try {
      const bytes = await this.deps.client.attachments.download(a, { onProgress: (p) => this.progress(item, p.phase, p.total ? p.bytes / p.total : 0) }).bytes();
      delete item.transfer;
      this.deps.view.item(item);
      const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: a.mediaType }));
      if (a.mediaType.startsWith('image/')) {
        this.deps.view.showImage(url, a.name ?? 'Image');
        return;
      }
      const link = document.createElement('a');
      link.href = url;
      link.download = a.name ?? 'file';
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (e) {
      item.transfer = { failed: plainError(e) };
      this.deps.view.item(item);
    }
  }

  /** An image sent with its metadata: warn on its item, and say it once to screen readers. */
  private metadataReport(item: HistoryItem, report: AttachmentMetadataReport): void {
    const warning = metadataWarning(report);
    if (!warning || item.metadataWarning === warning) return;
    item.metadataWarning = warning;
    this.deps.view.item(item);
    this.deps.view.announce(warning);
  }

  /** Progress of a transfer, redrawn at most every tenth. */
  private progress(item: HistoryItem, phase: 'upload' | 'download', done: number): void {
    const before = item.transfer && 'done' in item.transfer ? item.transfer.done : -1;
    if (done < 1 && Math.floor(done * 10) === Math.floor(before * 10)) return;
    item.transfer = { phase, done };
    this.deps.view.item(item);
  }

}
