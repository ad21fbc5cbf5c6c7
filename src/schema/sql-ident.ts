/** Quotes an SQL identifier (schema names are validated identifiers; quoting keeps them exact). */
export const q = (ident: string): string => `"${ident.replace(/"/g, '""')}"`
