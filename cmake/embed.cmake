# Compiles the bundled JavaScript runtime (src/js/lib/*.js, in file-name order) to
# Duktape bytecode at build time and embeds it as one C file; the .js files stay the
# source of truth and a syntax error in them fails the build.
add_executable(ar_jsc ${CMAKE_SOURCE_DIR}/src/js/tool/jsc.c)
target_link_libraries(ar_jsc PRIVATE ar_duktape m)

function(ar_embed_js out)
    set(inputs ${ARGN})
    list(SORT inputs)
    add_custom_command(OUTPUT ${out}
        COMMAND ar_jsc ${out} ${inputs}
        DEPENDS ar_jsc ${inputs}
        COMMENT "Compiling the JavaScript runtime to bytecode"
        VERBATIM)
endfunction()
