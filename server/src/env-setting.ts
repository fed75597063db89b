/** One documented setting (environment variable): every settings table of the hub, and README's, is a list of these. */
export interface EnvSetting {
  name: string;
  default: string;
  meaning: string;
}
