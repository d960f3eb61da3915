/*
 * kbkit_sal.h - the code-analysis (SAL 2) annotations the kit and the drivers
 * use, for compilers whose headers lack them.
 *
 * The WDK's sal.h and driverspecs.h define them; the WDK build's Code
 * Analysis (and the /analyze rule set) reads them: IRQL contracts, dispatch
 * roles, lock requirements. mingw-w64's headers define only part of SAL and
 * none of the driver annotations, so the mingw and clang SEH builds, which
 * compile the same sources against mingw's DDK, see the missing ones as
 * nothing here. A definition from the headers always wins (#ifndef).
 * Included by kbkit.h after <wdm.h>.
 */
#ifndef KBKIT_SAL_H
#define KBKIT_SAL_H

/* IRQL contracts (driverspecs.h). */
#ifndef _IRQL_requires_max_
#define _IRQL_requires_max_(irql)
#endif
#ifndef _IRQL_requires_
#define _IRQL_requires_(irql)
#endif
#ifndef _IRQL_requires_same_
#define _IRQL_requires_same_
#endif

/* Roles: a dispatch routine's major function, a callback's function class. */
#ifndef _Dispatch_type_
#define _Dispatch_type_(type)
#endif
#ifndef _Function_class_
#define _Function_class_(name)
#endif

/* Locks and results. */
#ifndef _Requires_lock_held_
#define _Requires_lock_held_(lock)
#endif
#ifndef _Must_inspect_result_
#define _Must_inspect_result_
#endif

/* A definition takes the annotations of its declaration (a role type or a prototype). */
#ifndef _Use_decl_annotations_
#define _Use_decl_annotations_
#endif

#endif /* KBKIT_SAL_H */
