// Types for layers.js (plain JavaScript so eslint.config.js loads it without a TypeScript loader).
import type { Rule } from 'eslint';

export interface Layer {
  name: string;
  folders: string[];
}
export interface LayerException {
  /** The importing file, relative to src/. */
  file: string;
  /** The src/ folder it imports against the layers. */
  to: string;
  why: string;
}
export const layers: Layer[];
export const exceptions: LayerException[];
export const pureFolders: string[];
export const pureModules: string[];
export function folderOf(srcRelative: string): string;
export function targetFolder(file: string, specifier: string): string | undefined;
export function layerViolation(file: string, specifier: string, allowed?: LayerException[]): string | undefined;
export function layerRule(srcRoot: string): Rule.RuleModule;
