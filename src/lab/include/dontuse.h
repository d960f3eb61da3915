/*
 * dontuse.h for the kbridge lab: the WDK's header of this name marks banned
 * string functions deprecated for its compiler; mingw-w64 has none, so WDK
 * samples that include it (e.g. Microsoft's general/event) build with this
 * empty stand-in. Nothing is declared.
 */
#ifndef KBRIDGE_DONTUSE_H
#define KBRIDGE_DONTUSE_H
#endif
