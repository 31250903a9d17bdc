export function podIp(group: number, ordinal: number): string;
export function resolvePod(host: string): string | undefined;
