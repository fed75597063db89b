/**
 * A real OpenID Connect provider for tests: `oidc-provider` (the certified Node implementation) on a
 * loopback port, issuing signed JWT access tokens by the client-credentials grant with resource
 * indicators. Each test client stands for one clinician's app; `extraTokenClaims` puts the claims a
 * hospital provider would (a username, the hospital, a display name, roles) into its tokens.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

/** The audience the hub expects; tokens for any other resource carry that resource as `aud`. */
export const HUB_RESOURCE = 'urn:curbside:hub';
export const HUB_AUDIENCE = 'curbside-hub';

export interface Clinician {
  /** The OAuth client that stands for this clinician's app (its `sub`). */
  clientId: string;
  /** What the hospital's provider calls them (`preferred_username`): the hub's user id under the mapping. */
  username: string;
  hospital: string;
  name: string;
  roles: string[];
}

export async function signingKey(kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
}

/** oidc-provider's storage for its own artefacts (grants, sessions): a Map per model, shared by rebuilds. */
class MapAdapter {
  private static readonly stores = new Map<string, Map<string, { payload: Record<string, unknown>; expiresAt: number }>>();
  private readonly store: Map<string, { payload: Record<string, unknown>; expiresAt: number }>;
  constructor(model: string) {
    this.store = MapAdapter.stores.get(model) ?? new Map();
    MapAdapter.stores.set(model, this.store);
  }
  async upsert(id: string, payload: Record<string, unknown>, expiresIn: number): Promise<void> {
    this.store.set(id, { payload, expiresAt: Date.now() + expiresIn * 1000 });
  }
  async find(id: string): Promise<Record<string, unknown> | undefined> {
    const e = this.store.get(id);
    return e && e.expiresAt > Date.now() ? e.payload : undefined;
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
    return [...this.store.values()].find((e) => e.payload['uid'] === uid)?.payload;
  }
  async consume(id: string): Promise<void> {
    const e = this.store.get(id);
    if (e) e.payload['consumed'] = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string): Promise<void> {
    this.store.delete(id);
  }
  async revokeByGrantId(grantId: string): Promise<void> {
    for (const [id, e] of this.store) if (e.payload['grantId'] === grantId) this.store.delete(id);
  }
}

export class TestOidcProvider {
  private server: Server | undefined;
  private provider: Provider | undefined;
  private keys: JWK[] = [];
  private readonly clinicians = new Map<string, Clinician>();
  /** Requests for the key set: the hub fetches it at start and again on an unknown `kid`. */
  jwksFetches = 0;
  issuer = '';

  /** Start on a free loopback port (or `port`), signing with `keys[0]` (a fresh key when none given). */
  async start(options: { keys?: JWK[]; port?: number; issuer?: string } = {}): Promise<this> {
    this.keys = options.keys ?? [await signingKey('key-1')];
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
    this.server = server;
    const { port } = server.address() as AddressInfo;
    this.issuer = options.issuer ?? `http://127.0.0.1:${port}`;
    this.provider = this.build();
    return this;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  /** The private signing keys (to start a second provider with the same key under another issuer). */
  get signingKeys(): JWK[] {
    return [...this.keys];
  }

  addClinician(c: Clinician): void {
    this.clinicians.set(c.clientId, c);
    this.provider = this.build();
  }

  /**
   * Key rotation as a provider does it: a new key signs from now on, the previous one stays in the
   * key set (tokens it signed are still valid until they expire). The provider keeps its issuer.
   */
  async rotateKey(kid: string): Promise<void> {
    this.keys = [await signingKey(kid), ...this.keys];
    this.provider = this.build();
  }

  /** A real access token from the token endpoint (client credentials, one resource). */
  async token(clientId: string, resource = HUB_RESOURCE): Promise<string> {
    // Its own address, not the issuer's: a provider may be started to forge another's issuer.
    const res = await fetch(`http://127.0.0.1:${this.port}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${clientId}:secret-${clientId}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'chat', resource }).toString(),
    });
    const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
    if (!body.access_token) throw new Error(`token endpoint said ${res.status} ${body.error}: ${body.error_description}`);
    return body.access_token;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.url?.startsWith('/jwks')) this.jwksFetches += 1;
    void this.provider!.callback()(req, res);
  }

  private build(): Provider {
    const clinicians = this.clinicians;
    const provider = new Provider(this.issuer, {
      adapter: MapAdapter,
      jwks: { keys: this.keys },
      clients: [...clinicians.values()].map((c) => ({
        client_id: c.clientId,
        client_secret: `secret-${c.clientId}`,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic' as const,
      })),
      scopes: ['chat'],
      ttl: { ClientCredentials: 600 },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => HUB_RESOURCE,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, resource) => ({
            scope: 'chat',
            audience: resource === HUB_RESOURCE ? HUB_AUDIENCE : resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'RS256' } },
          }),
        },
      },
      extraTokenClaims: (_ctx, token) => {
        const c = clinicians.get((token as { clientId?: string }).clientId ?? '');
        return c ? { preferred_username: c.username, hospital: c.hospital, name: c.name, roles: c.roles } : {};
      },
    });
    return provider;
  }
}
