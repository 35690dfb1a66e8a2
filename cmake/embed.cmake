# Turns the bundled JavaScript files into one C file: an array of {name, source}
# that the VM evaluates at start-up. The conversion runs at build time, so the
# .js files stay the source of truth.
function(ar_embed_js out)
    set(inputs ${ARGN})
    # '|' separates the files: a ';' would split the command line.
    string(REPLACE ";" "|" joined "${inputs}")
    add_custom_command(OUTPUT ${out}
        COMMAND ${CMAKE_COMMAND} -DOUT=${out} "-DINPUTS=${joined}" -P ${CMAKE_SOURCE_DIR}/cmake/embed_run.cmake
        DEPENDS ${inputs} ${CMAKE_SOURCE_DIR}/cmake/embed_run.cmake
        COMMENT "Embedding JavaScript runtime"
        VERBATIM)
endfunction()
