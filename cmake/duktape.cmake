# Builds Duktape from the amalgamation that Debian's duktape-dev installs, with a
# duk_config.h derived at configure time from the packaged one. Nothing of Duktape
# is kept in the repository: the build copies the packaged files into the build tree
# (so that "duk_config.h" resolves to the derived copy) and edits only the options
# autorun needs.
set(AR_DUKTAPE_DIR "/usr/share/duktape" CACHE PATH "Directory holding duktape.c, duktape.h and duk_config.h")
foreach(f duktape.c duktape.h duk_config.h)
    if(NOT EXISTS "${AR_DUKTAPE_DIR}/${f}")
        message(FATAL_ERROR "${AR_DUKTAPE_DIR}/${f} not found: install duktape-dev")
    endif()
endforeach()

set(AR_DUK_OUT "${CMAKE_BINARY_DIR}/duktape")
file(MAKE_DIRECTORY "${AR_DUK_OUT}")
configure_file("${AR_DUKTAPE_DIR}/duktape.c" "${AR_DUK_OUT}/duktape.c" COPYONLY)
configure_file("${AR_DUKTAPE_DIR}/duktape.h" "${AR_DUK_OUT}/duktape.h" COPYONLY)

file(READ "${AR_DUKTAPE_DIR}/duk_config.h" duk_cfg)
function(ar_duk_option from to)
    string(FIND "${duk_cfg}" "${from}" pos)
    if(pos EQUAL -1)
        message(FATAL_ERROR "packaged duk_config.h has no '${from}'; cannot derive the config")
    endif()
    string(REPLACE "${from}" "${to}" out "${duk_cfg}")
    set(duk_cfg "${out}" PARENT_SCOPE)
endfunction()
# The interrupt counter lets a run that loops forever be stopped: Duktape calls
# ar__js_exec_timeout_check() every few thousand bytecode instructions.
ar_duk_option("#undef DUK_USE_INTERRUPT_COUNTER" "#define DUK_USE_INTERRUPT_COUNTER")
ar_duk_option("#undef DUK_USE_EXEC_TIMEOUT_CHECK"
    "extern int ar__js_exec_timeout_check(void *udata);\n#define DUK_USE_EXEC_TIMEOUT_CHECK(udata) ar__js_exec_timeout_check((udata))")
# Integer fast path: recipes count, index and loop a lot.
ar_duk_option("#undef DUK_USE_FASTINT" "#define DUK_USE_FASTINT")
# No tail-call elimination: `return http.get(...)` would otherwise drop the recipe's
# own frame from the stack, and an error could no longer be reported at the recipe line
# that caused it.
ar_duk_option("#define DUK_USE_TAILCALL\n" "#undef DUK_USE_TAILCALL\n")
file(WRITE "${AR_DUK_OUT}/duk_config.h.new" "${duk_cfg}")
configure_file("${AR_DUK_OUT}/duk_config.h.new" "${AR_DUK_OUT}/duk_config.h" COPYONLY)

# Duktape plus autorun's small hooks into its internals, in one translation unit.
file(WRITE "${AR_DUK_OUT}/ar_duktape.c.new"
    "#include \"duktape.c\"\n#include \"${CMAKE_SOURCE_DIR}/src/js/duk_hooks.inc\"\n")
configure_file("${AR_DUK_OUT}/ar_duktape.c.new" "${AR_DUK_OUT}/ar_duktape.c" COPYONLY)
add_library(ar_duktape STATIC "${AR_DUK_OUT}/ar_duktape.c")
set_source_files_properties("${AR_DUK_OUT}/ar_duktape.c" PROPERTIES
    OBJECT_DEPENDS "${CMAKE_SOURCE_DIR}/src/js/duk_hooks.inc;${AR_DUK_OUT}/duktape.c")
target_include_directories(ar_duktape PUBLIC "${AR_DUK_OUT}")
target_compile_options(ar_duktape PRIVATE -w -O2)
set_target_properties(ar_duktape PROPERTIES POSITION_INDEPENDENT_CODE ON)
