/**
 * The widget's styles, in its shadow root. Hosts theme it with CSS custom properties set on the
 * element (they inherit into the shadow root); the defaults meet WCAG AA contrast (4.5:1 for text).
 */
export const CSS = `
:host {
  --_accent: var(--curbside-accent, #0b5cad);
  --_accent-fg: var(--curbside-accent-fg, #ffffff);
  --_bg: var(--curbside-bg, #ffffff);
  --_fg: var(--curbside-fg, #1b1f24);
  --_muted: var(--curbside-muted, #545d68);
  --_surface: var(--curbside-surface, #f2f4f7);
  --_border: var(--curbside-border, #c4cad2);
  --_danger: var(--curbside-danger, #a4161a);
  --_warning-bg: var(--curbside-warning-bg, #fff4d6);
  --_focus: var(--curbside-focus, #1a73e8);
  --_radius: var(--curbside-radius, 8px);
  display: block;
  box-sizing: border-box;
  min-height: 320px;
  height: 480px;
  color: var(--_fg);
  background: var(--_bg);
  font-family: var(--curbside-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  font-size: var(--curbside-font-size, 15px);
  line-height: 1.4;
  border: 1px solid var(--_border);
  border-radius: var(--_radius);
  overflow: hidden;
  container-type: inline-size;
  position: relative;
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
button, input, textarea { font: inherit; color: inherit; }
button {
  cursor: pointer; border: 1px solid var(--_border); background: var(--_bg);
  border-radius: calc(var(--_radius) * 0.75); padding: 0.35em 0.8em; min-height: 2.2em;
}
button.primary { background: var(--_accent); color: var(--_accent-fg); border-color: var(--_accent); }
button.danger { background: var(--_danger); color: #fff; border-color: var(--_danger); }
button:disabled, button[aria-disabled='true'] { opacity: 0.6; cursor: default; }
:focus-visible { outline: 3px solid var(--_focus); outline-offset: 2px; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }

.root { display: flex; flex-direction: column; height: 100%; }
.banner { padding: 0.4em 0.8em; background: var(--_warning-bg); color: var(--_fg); border-bottom: 1px solid var(--_border); font-size: 0.9em; }
.banner:empty { display: none; }
.panes { flex: 1; display: flex; min-height: 0; }
.sidebar { width: 36%; min-width: 200px; max-width: 320px; border-right: 1px solid var(--_border); display: flex; flex-direction: column; background: var(--_surface); }
.sidebar-head { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 0.5em; padding: 0.6em 0.8em; border-bottom: 1px solid var(--_border); }
.sidebar-head h2 { font-size: 1em; margin: 0; flex: 1 0 auto; }
.verified { display: inline-block; position: relative; margin: 0.1em 0; padding: 0 0.4em; border-radius: 0.6em; font-size: 0.8em; font-weight: 600; color: var(--_fg); background: var(--_surface); border: 1px solid var(--_accent); }
.verified:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
.verified:hover::after, .verified:focus::after { content: attr(data-detail); position: absolute; left: 0; top: 100%; z-index: 5; width: max-content; max-width: 18em; margin-top: 0.3em; padding: 0.3em 0.5em; font-weight: 400; background: var(--_bg); color: var(--_fg); border: 1px solid var(--_border); border-radius: 0.3em; white-space: normal; }
.file { margin: 0.2em 0; }
.file .thumb { display: block; max-width: 16em; max-height: 12em; border-radius: 0.3em; border: 1px solid var(--_border); }
.file-name { margin: 0.2em 0; font-size: 0.9em; overflow-wrap: anywhere; }
.file progress { display: block; width: 12em; }
.file-error { margin: 0.2em 0; color: var(--_danger, #a4161a); font-size: 0.9em; }
.metadata-note { margin: 0.2em 0; font-size: 0.8em; color: var(--_muted); }
.metadata-warning { margin: 0.2em 0; padding: 0.2em 0.4em; font-size: 0.9em; font-weight: 600; color: var(--_danger, #a4161a); border-left: 3px solid var(--_danger, #a4161a); }
.file-input { position: absolute; width: 1px; height: 1px; opacity: 0; pointer-events: none; }
.thread.dropping { outline: 3px dashed var(--_accent); outline-offset: -3px; }
.image-view .full { display: block; max-width: 100%; max-height: 70vh; margin: 0.5em auto; }
.oncall { padding: 0.6em 0.8em; border-bottom: 1px solid var(--_border); }
.oncall h3 { font-size: 0.95em; margin: 0 0 0.4em; }
.roles { list-style: none; margin: 0.4em 0 0; padding: 0; }
.role-row { display: flex; flex-wrap: wrap; align-items: center; gap: 0.4em; padding: 0.3em 0; }
.role-row .name { font-weight: 600; overflow-wrap: anywhere; }
.role-row .holders { color: var(--_muted); flex: 1 1 10em; }
.consults { padding: 0.6em 0.8em; border-bottom: 1px solid var(--_border); display: grid; gap: 0.4em; max-height: 50%; overflow-y: auto; }
.consults h3 { font-size: 0.95em; margin: 0; }
.consults label, .case-form label, .reply-form label, .close-form label { font-size: 0.85em; color: var(--_muted); display: grid; gap: 0.15em; }
.consults input, .case-form textarea, .case-form select, .reply-form textarea, .close-form textarea { border: 1px solid var(--_muted); border-radius: 6px; padding: 0.3em 0.5em; background: var(--_bg); color: var(--_fg); font: inherit; }
.consults .found, .pool-note { margin: 0; font-size: 0.85em; color: var(--_muted); }
.consults .found:empty, .consults .form-error:empty, ul.pools:empty, .pool-status:empty, .pool-view .form-error:empty { display: none; }
ul.pools { list-style: none; margin: 0; padding: 0; }
.pool-row { display: flex; flex-wrap: wrap; align-items: center; gap: 0.4em; padding: 0.3em 0; }
.pool-row .name { font-weight: 600; overflow-wrap: anywhere; flex: 1 1 8em; }
.pool-row .count { color: var(--_muted); font-size: 0.85em; }
form.new-pool { display: grid; gap: 0.4em; }
.pool-view { flex: 1; display: flex; flex-direction: column; min-width: 0; }
.pool-scroll { flex: 1; overflow-y: auto; min-height: 0; padding: 0.6em 0.8em; display: grid; align-content: start; gap: 0.6em; }
.pool-status { margin: 0; font-size: 0.9em; }
.case-form, .close-form { display: grid; gap: 0.45em; padding: 0.6em; border: 1px solid var(--_border); border-radius: var(--_radius); background: var(--_surface); }
.case-choices { display: flex; flex-wrap: wrap; gap: 0.6em; }
.pseudonym-slot { display: grid; gap: 0.3em; padding-top: 0.4em; border-top: 1px solid var(--_border); }
.case-form label.pseudonym-toggle { display: flex; align-items: center; gap: 0.4em; color: var(--_fg); }
.pseudonym-slot .ask-tokens { justify-self: start; }
.case-form .actions, .close-form .actions, .case-card .actions { display: flex; flex-wrap: wrap; gap: 0.4em; }
ol.cases { list-style: none; margin: 0; padding: 0; display: grid; gap: 0.8em; }
.case-card { border: 1px solid var(--_border); border-radius: var(--_radius); padding: 0.6em 0.8em; display: grid; gap: 0.4em; }
.case-body { display: grid; gap: 0.3em; }
.case-card h3.question { font-size: 1em; margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.case-card p { margin: 0; }
.case-meta, .asker, .reply-meta, .replies-count, .moved { font-size: 0.85em; color: var(--_muted); }
.case-card .name { font-weight: 600; color: var(--_fg); }
.case-summary { border-left: 4px solid #1e7e34; padding-left: 0.6em; }
.closed-label { font-weight: 600; font-size: 0.85em; }
.summary-text, .reply-text { white-space: pre-wrap; overflow-wrap: anywhere; }
ol.replies { list-style: none; margin: 0; padding: 0 0 0 0.8em; border-left: 2px solid var(--_border); display: grid; gap: 0.5em; }
.reply.is-helpful { border-left: 4px solid #1e7e34; margin-left: -0.8em; padding-left: calc(0.8em - 4px); }
.helpful { color: #1e7e34; font-weight: 600; }
.msg .consult-tag { margin: 0 0 0.15em; font-size: 0.78em; font-weight: 600; color: var(--_muted); }
form.reply-form { display: flex; gap: 0.5em; align-items: flex-end; }
form.reply-form label { flex: 1; }
.sidebar-head button { white-space: nowrap; }
.me { font-size: 0.85em; color: var(--_muted); padding: 0 0.8em 0.4em; }
ul.conversations { list-style: none; margin: 0; padding: 0; overflow-y: auto; flex: 1; }
ul.conversations li { border-bottom: 1px solid var(--_border); }
ul.conversations li.conv-row { position: relative; }
ul.conversations button.conv {
  width: 100%; text-align: left; border: 0; border-radius: 0; background: transparent; padding: 0.6em 0.8em 0.1em;
  display: grid; grid-template-columns: 0.9em minmax(0, 1fr) auto; column-gap: 0.5em; align-items: center;
}
/* The whole row (the preview under the button too) opens the conversation. */
ul.conversations button.conv::after { content: ''; position: absolute; inset: 0; }
ul.conversations button.conv:focus-visible { outline-offset: -3px; }
ul.conversations li.conv-row:has(button.conv[aria-current="true"]) { background: var(--_bg); box-shadow: inset 4px 0 0 var(--_accent); }
/* Names and care-team titles are shown in full: they wrap, never cut off (a preview may be cut). */
.conv .dot { grid-column: 1; grid-row: 1; }
.conv .name { grid-column: 2; grid-row: 1; font-weight: 600; overflow-wrap: anywhere; }
.conv .badge { grid-column: 3; grid-row: 1; }
.conv .detail, .conv .team-tag { grid-column: 2 / 4; justify-self: start; }
.conv .detail { color: var(--_muted); font-size: 0.85em; overflow-wrap: anywhere; }
.conv-row .preview { padding: 0 0.8em 0.6em calc(0.8em + 0.9em + 0.5em); color: var(--_muted); font-size: 0.88em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.badge { background: var(--_accent); color: var(--_accent-fg); border-radius: 999px; padding: 0 0.5em; font-size: 0.8em; font-weight: 700; min-width: 1.6em; text-align: center; }
.team-tag { font-size: 0.7em; font-weight: 700; text-transform: uppercase; letter-spacing: 0.04em; border: 1px solid var(--_muted); color: var(--_muted); border-radius: 4px; padding: 0 0.3em; }
.dot { width: 0.6em; height: 0.6em; border-radius: 50%; border: 1.5px solid var(--_muted); display: inline-block; }
.dot.online { background: #1e7e34; border-color: #1e7e34; }
.dot.unknown { border-style: dashed; }
.empty { color: var(--_muted); padding: 1em 0.8em; }

form.new { padding: 0.6em 0.8em; border-bottom: 1px solid var(--_border); display: grid; gap: 0.4em; }
form.new label { font-size: 0.85em; color: var(--_muted); display: grid; gap: 0.15em; }
form.new input { border: 1px solid var(--_muted); border-radius: 6px; padding: 0.3em 0.5em; background: var(--_bg); color: var(--_fg); }
form.new .found { margin: 0; font-size: 0.85em; color: var(--_muted); }
form.new .found:empty, ul.directory-results:empty { display: none; }
ul.directory-results { list-style: none; margin: 0; padding: 0; display: grid; gap: 0.25em; }
ul.directory-results button.person { width: 100%; text-align: left; display: grid; background: var(--_bg); }
.person .name { font-weight: 600; overflow-wrap: anywhere; }
.person .detail { font-size: 0.85em; color: var(--_muted); overflow-wrap: anywhere; }
.form-error { color: var(--_danger); font-size: 0.88em; }

.thread { flex: 1; display: flex; flex-direction: column; min-width: 0; }
.thread-head { display: flex; flex-wrap: wrap; align-items: center; gap: 0.4em 0.6em; padding: 0.6em 0.8em; border-bottom: 1px solid var(--_border); }
.thread-head .title { flex: 1 1 12em; min-width: 0; }
.thread-head h2 { font-size: 1.05em; margin: 0; overflow-wrap: anywhere; }
.thread-head .detail { margin: 0; color: var(--_muted); font-size: 0.85em; overflow-wrap: anywhere; }
.thread-head .presence { color: var(--_muted); font-size: 0.85em; display: flex; align-items: center; gap: 0.3em; }
.back { display: none; }
.log { flex: 1; overflow-y: auto; min-height: 0; }
ol.messages { list-style: none; margin: 0; padding: 0.8em; display: flex; flex-direction: column; gap: 0.5em; }
.msg { max-width: 80%; align-self: flex-start; }
.msg.out { align-self: flex-end; }
.msg .bubble { background: var(--_surface); border: 1px solid var(--_border); border-radius: var(--_radius); padding: 0.45em 0.7em; white-space: pre-wrap; overflow-wrap: anywhere; }
.msg.out .bubble { background: var(--_accent); color: var(--_accent-fg); border-color: var(--_accent); }
.msg .meta { font-size: 0.78em; color: var(--_muted); margin-top: 0.15em; }
.msg.out .meta { text-align: right; }
.urgent { background: #fff0f0; border: 2px solid var(--_danger); border-left-width: 6px; margin: 0.4em; padding: 0.3em 0.6em; }
.urgent[hidden] { display: none; }
.urgent-item + .urgent-item { border-top: 1px solid var(--_danger); margin-top: 0.3em; padding-top: 0.3em; }
.urgent-head { margin: 0; color: var(--_danger); }
.urgent-text { margin: 0.15em 0 0.3em; white-space: pre-wrap; overflow-wrap: anywhere; color: var(--_fg); font-weight: 600; }
.msg.urgent .bubble { border: 2px solid var(--_danger); }
.msg.out.urgent .bubble { box-shadow: 0 0 0 2px var(--_danger); }
.urgent-badge { background: var(--_danger); color: #fff; font-weight: 700; font-size: 0.75em; }
.msg .timeline { font-size: 0.78em; color: var(--_muted); margin-top: 0.1em; }
.msg .ack { margin-top: 0.25em; }
.composer .urgent-toggle[aria-pressed='true'] { background: var(--_danger); color: #fff; border-color: var(--_danger); }
.composer.is-urgent textarea { border-color: var(--_danger); outline-color: var(--_danger); }
.msg .status.failed { color: var(--_danger); font-weight: 600; }
.notice { align-self: center; max-width: 90%; text-align: center; font-size: 0.88em; color: var(--_muted); border: 1px dashed var(--_border); border-radius: var(--_radius); padding: 0.4em 0.7em; }
.notice.problem { color: var(--_danger); border-color: var(--_danger); border-style: solid; }
.typing { min-height: 1.4em; padding: 0 0.8em; font-size: 0.85em; color: var(--_muted); }
form.composer { display: flex; gap: 0.5em; padding: 0.6em 0.8em; border-top: 1px solid var(--_border); align-items: flex-end; }
form.composer textarea { flex: 1; resize: none; min-height: 2.4em; max-height: 8em; border: 1px solid var(--_muted); border-radius: 6px; padding: 0.4em 0.5em; background: var(--_bg); }
.placeholder { flex: 1; display: flex; align-items: center; justify-content: center; color: var(--_muted); padding: 1em; text-align: center; }

.overlay { position: absolute; inset: 0; background: rgba(0, 0, 0, 0.45); display: flex; align-items: center; justify-content: center; padding: 1em; z-index: 2; }
.dialog { background: var(--_bg); color: var(--_fg); border-radius: var(--_radius); max-width: 28em; width: 100%; padding: 1em 1.2em; box-shadow: 0 6px 24px rgba(0, 0, 0, 0.3); max-height: 100%; overflow-y: auto; }
.dialog h2 { margin: 0 0 0.25em; font-size: 1.1em; overflow-wrap: anywhere; }
.dialog .who { margin: 0 0 0.5em; color: var(--_muted); font-size: 0.88em; overflow-wrap: anywhere; }
.dialog.warning h2 { color: var(--_danger); }
.dialog .actions { display: flex; gap: 0.5em; justify-content: flex-end; flex-wrap: wrap; margin-top: 1em; }
.digits { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 1.1em; letter-spacing: 0.05em; display: grid; grid-template-columns: repeat(4, auto); gap: 0.3em 1em; justify-content: center; margin: 0.8em 0; }
.verified { color: #1e7e34; font-weight: 600; }
ul.members { list-style: none; padding: 0; margin: 0.5em 0; }
ul.members li { display: flex; justify-content: space-between; align-items: center; gap: 0.5em; padding: 0.3em 0; border-bottom: 1px solid var(--_border); }
.member { display: grid; min-width: 0; }
.member .name { font-weight: 600; overflow-wrap: anywhere; }
.member .detail { font-size: 0.85em; color: var(--_muted); overflow-wrap: anywhere; }

/* Narrow hosts: one pane at a time, with a back button. */
@container (max-width: 560px) {
  .sidebar { width: 100%; max-width: none; border-right: 0; }
  .root[data-view="thread"] .sidebar { display: none; }
  .root[data-view="list"] .thread, .root[data-view="list"] .pool-view { display: none; }
  .back { display: inline-block; }
  .msg { max-width: 92%; }
}
@media (prefers-reduced-motion: no-preference) { .log { scroll-behavior: smooth; } }
@media (forced-colors: active) { .msg .bubble, .badge, .dot.online { border: 1px solid CanvasText; } }
`;
