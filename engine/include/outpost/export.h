// Copyright 2026 The Outpost Authors.
//
// OUTPOST_EXPORT marks what the libraries export: every public class and free function of
// engine/include/outpost (and of the adapters' headers). The libraries are compiled with hidden visibility
// by default (-fvisibility=hidden, -fvisibility-inlines-hidden), so a shared build (BUILD_SHARED_LIBS=ON)
// exports only the API and keeps the internals (FlatBuffers, the backends' libraries) out of the dynamic
// symbol table. On ELF and Mach-O the same attribute serves the library and its users, and is harmless
// in a static build.
#ifndef OUTPOST_EXPORT_H_
#define OUTPOST_EXPORT_H_

// The standard attribute form, so that it may follow other attributes: `class [[nodiscard]] OUTPOST_EXPORT
// Status`.
#if defined(__GNUC__) || defined(__clang__)
#define OUTPOST_EXPORT [[gnu::visibility("default")]]
#else
#define OUTPOST_EXPORT
#endif

#endif  // OUTPOST_EXPORT_H_
