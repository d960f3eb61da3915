/*
 * kbversion.h - the driver's version, the one definition: GET_VERSION
 * reports it (internal.h) and the WDK build's version resource (kbridge.rc)
 * shows it. Plain numbers: the resource compiler reads this file too.
 */
#ifndef KBVERSION_H
#define KBVERSION_H

#define KB_DRIVER_MAJOR 1
#define KB_DRIVER_MINOR 0

#define KB_STRINGIZE_(x) #x
#define KB_STRINGIZE(x) KB_STRINGIZE_(x)
/* "1.0" */
#define KB_DRIVER_VERSION_STR KB_STRINGIZE(KB_DRIVER_MAJOR.KB_DRIVER_MINOR)

#endif /* KBVERSION_H */
