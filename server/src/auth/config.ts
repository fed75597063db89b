/**
 * Identity-provider settings from the environment: the hospital's own OpenID Connect provider
 * (discovery, JWKS) and how its access-token claims map to Curbside's user, organisation, display
 * name and roles. `loadOidcConfig` is called by `loadConfig` and reports problems into the same list.
 */
import type { EnvSetting } from '../env-setting.js';

/** Where the organisation (tenant) comes from: a claim of every token, or one fixed org per deployment. */
export type OrgMapping = { claim: string } | { fixed: string };

/** Which claims say who is connecting. Names may be dotted paths into nested claims (`realm_access.roles`). */
export interface ClaimMapping {
  /** The clinician's id. @default sub */
  userClaim: string;
  org: OrgMapping;
  /** The device id, when tokens carry one (the static key path: `dev`); otherwise the handshake states it. */
  deviceClaim?: string | undefined;
  /** The display name (a string). */
  nameClaim?: string | undefined;
  /** Roles: an array of strings, or one space-separated string. */
  rolesClaim?: string | undefined;
  /** The directory profile's role or specialty (a string), e.g. "Cardiology registrar". */
  profileRoleClaim?: string | undefined;
  /** The directory profile's department (a string). */
  departmentClaim?: string | undefined;
}

/** Claims as static-key (and dev) tokens carry them: `sub`, `org`, `dev`, `name`, `profile_role`, `department`. */
export const STATIC_CLAIMS: ClaimMapping = { userClaim: 'sub', org: { claim: 'org' }, deviceClaim: 'dev', nameClaim: 'name', profileRoleClaim: 'profile_role', departmentClaim: 'department' };

export interface OidcConfig {
  /** The provider's issuer URL: discovery is `${issuer}/.well-known/openid-configuration`, and tokens' `iss` must equal it. */
  issuer: string;
  /** Expected `aud` of access tokens meant for Curbside. */
  audience: string;
  claims: ClaimMapping;
  /** After a JWKS fetch, a token with an unknown `kid` triggers no new fetch for this long (ms). @default 30000 */
  jwksCooldownMs: number;
  /** The JWKS is fetched again after this long even without an unknown `kid` (ms). @default 600000 */
  jwksMaxAgeMs: number;
  /** Allowed clock skew for `exp` (JWT_CLOCK_TOLERANCE_SEC). @default 5 */
  clockToleranceSec?: number | undefined;
}

/** A claim name or dotted path: letters, digits and `_ - : / .` (URL-style claim names included). */
const CLAIM_NAME = /^[A-Za-z0-9_\-:/.]{1,200}$/;

export const OIDC_ENV_DOC: readonly EnvSetting[] = [
  {
    name: 'OIDC_ISSUER',
    default: '(unset: static key, JWT_PUBLIC_KEY)',
    meaning: "the hospital's OpenID Connect issuer URL (https://, or http:// on loopback for testing): keys come from its discovery document's `jwks_uri`, fetched, cached and fetched again on an unknown `kid`; tokens' `iss` must equal it",
  },
  { name: 'OIDC_AUDIENCE', default: '(required with OIDC_ISSUER)', meaning: 'expected `aud` of access tokens meant for Curbside' },
  { name: 'OIDC_USER_CLAIM', default: 'sub', meaning: "the claim holding the clinician's user id (dotted paths reach nested claims)" },
  { name: 'OIDC_ORG_CLAIM', default: '(one of the two is required)', meaning: 'the claim holding the organisation (tenant) id' },
  { name: 'OIDC_FIXED_ORG', default: '(one of the two is required)', meaning: "one organisation id for every token of this deployment, instead of OIDC_ORG_CLAIM" },
  { name: 'OIDC_NAME_CLAIM', default: '(unset: none)', meaning: 'the claim holding the display name, e.g. `name`' },
  { name: 'OIDC_PROFILE_ROLE_CLAIM', default: '(unset: none)', meaning: "the claim holding the clinician's role or specialty for the directory, e.g. `jobTitle`" },
  { name: 'OIDC_DEPARTMENT_CLAIM', default: '(unset: none)', meaning: "the claim holding the clinician's department for the directory, e.g. `department`" },
  { name: 'OIDC_ROLES_CLAIM', default: '(unset: none)', meaning: 'the claim holding roles (an array, or a space-separated string), e.g. `realm_access.roles`' },
  { name: 'OIDC_JWKS_COOLDOWN_MS', default: '30000', meaning: 'after a JWKS fetch, an unknown `kid` triggers no new fetch for this long (bounds fetches forged tokens can cause); such tokens get UNAVAILABLE with retryAfterMs meanwhile' },
  { name: 'OIDC_JWKS_MAX_AGE_MS', default: '600000', meaning: 'the JWKS is fetched again after this long even when every `kid` is known' },
];

/** Loopback hosts, where plain http is tolerated for a test provider. */
function isLoopbackUrl(u: URL): boolean {
  return u.hostname === 'localhost' || u.hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(u.hostname);
}

/** An issuer URL the hub may fetch discovery from: https, or http on loopback. */
export function issuerUrlProblem(issuer: string): string | undefined {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return `must be a URL such as https://login.hospital.example/realms/staff (got "${issuer}")`;
  }
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackUrl(url)) return undefined;
  return `must be an https:// URL (plain http only on loopback, for testing) (got "${issuer}")`;
}

/**
 * OIDC settings, or undefined when OIDC_ISSUER is unset. Every bad combination is a problem that
 * names the setting to fix.
 */
export function loadOidcConfig(
  get: (name: string) => string | undefined,
  num: (name: string, def: number, min: number, max: number) => number,
  problem: (setting: string, reason: string) => void,
): OidcConfig | undefined {
  const issuer = get('OIDC_ISSUER');
  const dependent = ['OIDC_AUDIENCE', 'OIDC_USER_CLAIM', 'OIDC_ORG_CLAIM', 'OIDC_FIXED_ORG', 'OIDC_NAME_CLAIM', 'OIDC_ROLES_CLAIM', 'OIDC_PROFILE_ROLE_CLAIM', 'OIDC_DEPARTMENT_CLAIM'].filter((n) => get(n) !== undefined);
  if (!issuer) {
    for (const name of dependent) problem(name, 'is set but OIDC_ISSUER is not: set OIDC_ISSUER to use an OpenID Connect provider');
    return undefined;
  }
  const urlProblem = issuerUrlProblem(issuer);
  if (urlProblem) problem('OIDC_ISSUER', urlProblem);
  const audience = get('OIDC_AUDIENCE');
  if (!audience) problem('OIDC_AUDIENCE', 'is required with OIDC_ISSUER: the `aud` your identity provider puts in access tokens meant for Curbside');
  const claimSetting = (name: string): string | undefined => {
    const v = get(name);
    if (v !== undefined && !CLAIM_NAME.test(v)) problem(name, `must be a claim name or dotted path (letters, digits, _ - : / .) (got "${v}")`);
    return v;
  };
  const userClaim = claimSetting('OIDC_USER_CLAIM') ?? 'sub';
  const orgClaim = claimSetting('OIDC_ORG_CLAIM');
  const fixedOrg = get('OIDC_FIXED_ORG');
  let org: OrgMapping = { fixed: 'invalid' };
  if (orgClaim && fixedOrg) problem('OIDC_FIXED_ORG', 'set OIDC_ORG_CLAIM or OIDC_FIXED_ORG, not both: the organisation comes from a token claim or is fixed for the deployment');
  else if (orgClaim) org = { claim: orgClaim };
  else if (fixedOrg) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(fixedOrg)) problem('OIDC_FIXED_ORG', `must be an organisation id of letters, digits, . _ - (got "${fixedOrg}")`);
    org = { fixed: fixedOrg };
  } else problem('OIDC_ORG_CLAIM', '(or OIDC_FIXED_ORG) is required with OIDC_ISSUER: the claim naming the organisation (tenant), or one organisation id for this deployment');
  const nameClaim = claimSetting('OIDC_NAME_CLAIM');
  const rolesClaim = claimSetting('OIDC_ROLES_CLAIM');
  const profileRoleClaim = claimSetting('OIDC_PROFILE_ROLE_CLAIM');
  const departmentClaim = claimSetting('OIDC_DEPARTMENT_CLAIM');
  if (orgClaim !== undefined && orgClaim === userClaim) problem('OIDC_ORG_CLAIM', `names the same claim as OIDC_USER_CLAIM ("${userClaim}"): every user would be an organisation of their own`);
  return {
    issuer,
    audience: audience ?? '',
    claims: { userClaim, org, nameClaim, rolesClaim, profileRoleClaim, departmentClaim },
    jwksCooldownMs: num('OIDC_JWKS_COOLDOWN_MS', 30_000, 0, 3_600_000),
    jwksMaxAgeMs: num('OIDC_JWKS_MAX_AGE_MS', 600_000, 1_000, 86_400_000),
  };
}
