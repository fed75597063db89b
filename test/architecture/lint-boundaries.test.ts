/**
 * Proves the architecture rule in eslint.config.js fires: server/ and client-sdk/ never import each
 * other (both go through @curbside/shared). Lints in-memory snippets as if they lived at the given
 * paths; the files need not exist, the path only selects which config blocks apply.
 */
import { expect } from 'chai';
import { ESLint } from 'eslint';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('architecture lint rule (eslint.config.js)', () => {
  // One instance for the whole suite: loading the config and the TS parser is the slow part.
  const eslint = new ESLint({ cwd: repoRoot });

  async function lint(code: string, filePath: string): Promise<ESLint.LintResult> {
    const results = await eslint.lintText(code, { filePath, warnIgnored: true });
    expect(results).to.have.length(1);
    const result = results[0]!;
    // A path the config ignores would come back with a single "File ignored" warning and prove nothing.
    expect(result.messages.map((m) => m.message).join('\n')).not.to.match(/ignored/i);
    return result;
  }

  function restrictedImportErrors(result: ESLint.LintResult): string[] {
    return result.messages.filter((m) => m.ruleId === 'no-restricted-imports' && m.severity === 2).map((m) => m.message);
  }

  it('server/ importing @curbside/client-sdk is an error', async () => {
    const result = await lint("import { CurbsideClient } from '@curbside/client-sdk';\nexport const c = CurbsideClient;\n", 'server/src/some-file.ts');
    expect(restrictedImportErrors(result)).to.have.length(1);
    expect(restrictedImportErrors(result)[0]).to.match(/server\/ must not import client-sdk/);
  });

  it('server/ importing client-sdk/ by relative path is an error', async () => {
    const result = await lint("import { x } from '../../client-sdk/src/x.js';\nexport const y = x;\n", 'server/src/some-file.ts');
    expect(restrictedImportErrors(result)).to.have.length(1);
  });

  it('client-sdk/ importing @curbside/server is an error', async () => {
    const result = await lint("import { createHub } from '@curbside/server';\nexport const h = createHub;\n", 'client-sdk/src/some-file.ts');
    expect(restrictedImportErrors(result)).to.have.length(1);
    expect(restrictedImportErrors(result)[0]).to.match(/client-sdk\/ must not import server/);
  });

  it('client-sdk/ importing server/ by relative path is an error', async () => {
    const result = await lint("import { x } from '../../server/src/x.js';\nexport const y = x;\n", 'client-sdk/src/some-file.ts');
    expect(restrictedImportErrors(result)).to.have.length(1);
    expect(restrictedImportErrors(result)[0]).to.match(/client-sdk\/ must not import server/);
  });

  it('server/ importing @curbside/shared is fine', async () => {
    const result = await lint("import { Limits } from '@curbside/shared';\nexport const l = Limits;\n", 'server/src/some-file.ts');
    expect(result.messages).to.deep.equal([]);
    expect(result.errorCount).to.equal(0);
  });
});
