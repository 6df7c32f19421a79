// Quoting for sh: pure, shared by the host layer, the renderers and the tests.

/** A word for sh: as it is when it has no special characters, else single-quoted. */
export function shellQuote(word: string): string {
    return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
