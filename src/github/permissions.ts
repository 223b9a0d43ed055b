/** A repository role as the collaborator-permission API reports it. */
export type RepoRole = 'admin' | 'maintain' | 'write' | 'triage' | 'read' | 'none';

/** The answer of `GET /repos/{owner}/{repo}/collaborators/{username}/permission`. */
export interface PermissionAnswer {
  readonly permission?: string;
  readonly role_name?: string;
}

/** The role in an API answer: `role_name` when present (it knows maintain and triage), else `permission`. */
export function roleOf(answer: PermissionAnswer): RepoRole {
  const role = (answer.role_name ?? answer.permission ?? 'none').toLowerCase();
  return (['admin', 'maintain', 'write', 'triage', 'read'] as const).find((r) => r === role) ?? 'none';
}

/** Who is asking, as the webhook says. */
export interface Sender {
  readonly login: string;
  readonly type: string;
}

/**
 * Whether a sender may trigger cldpd. Bots never may (the app's own comments included);
 * people need write, maintain or admin on the repository, as the API answered — never
 * guessed from author_association.
 */
export function mayTrigger(sender: Sender, role: RepoRole): boolean {
  if (isBot(sender)) return false;
  return role === 'admin' || role === 'maintain' || role === 'write';
}

/** Bots: type "Bot", or a login ending in "[bot]". */
export function isBot(sender: Sender): boolean {
  return sender.type === 'Bot' || /\[bot\]$/i.test(sender.login);
}
