package cache

// JobKey is the key of one farm compile, computed the same way by the
// client that looks it up (with its own compiler) and by the volunteer
// that stores its result (with the compiler that ran): docs/cache.md
// lists every input and why.
//
//   - salt: the broker's --cache-salt;
//   - fingerprint and compilerDigest: the compiler as the farm matches it,
//     and the sha256 of its binary;
//   - driver, lang, ext, kind: how it was run and what it produced;
//   - args: the remote arguments, in order;
//   - sourceName: the shipped file's name (clang records it in the
//     object; for preprocessed text the name inside is the line markers');
//   - sourceDigest: the sha256 of the exact bytes shipped, which hold the
//     line markers, so every path the object can embed (the working
//     directory gcc puts there under -g, the source and header names) is
//     part of the key.
func JobKey(salt, fingerprint string, compilerDigest []byte, driver, lang, ext, kind string, args []string, sourceName string, sourceDigest []byte) Key {
	return ComputeKey(KeyInput{
		Salt: salt, CompilerFingerprint: fingerprint, CompilerDigest: compilerDigest,
		Driver: driver, Lang: lang, Ext: ext, Kind: kind, Args: args, SourceDigest: sourceDigest,
		Extra: map[string]string{"source_name": sourceName},
	})
}
