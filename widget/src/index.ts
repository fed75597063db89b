/**
 * `@curbside/widget`: registers the `<curbside-chat>` custom element. Loaded by one script tag:
 *
 * ```html
 * <script src="https://chat.hospital.example/widget/curbside-chat.js"></script>
 * <curbside-chat></curbside-chat>
 * <script>document.querySelector('curbside-chat').getToken = () => myApp.fetchCurbsideToken();</script>
 * ```
 */
import { CurbsideChatElement } from './element.js';

export { CurbsideChatElement };

if (typeof customElements !== 'undefined' && !customElements.get('curbside-chat')) {
  customElements.define('curbside-chat', CurbsideChatElement);
}

declare global {
  interface HTMLElementTagNameMap {
    'curbside-chat': CurbsideChatElement;
  }
}
