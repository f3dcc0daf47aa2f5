# Fuzz targets: tests/fuzz/targets/NAME_fuzz.cc, each defining LLVMFuzzerTestOneInput, with its seed corpus
# in tests/fuzz/corpus/NAME/. Included from tests/CMakeLists.txt.
#  - OUTPOST_FUZZ=ON (clang; the top-level CMakeLists instruments everything for coverage, ASan and UBSan):
#    one libFuzzer binary per target, NAME_fuzz; tools/fuzz runs them. ctest replays each corpus with
#    `NAME_fuzz -runs=0 CORPUS`.
#  - otherwise (any compiler): one binary, fuzz_replay, with every target built in under its own name
#    (LLVMFuzzerTestOneInput renamed per file); ctest replays each corpus as the test fuzz.NAME.
# tests/fuzz/corpus_gen (EXCLUDE_FROM_ALL) writes the seed corpora from real encoded frames and records.
file(GLOB fuzz_target_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/targets/*_fuzz.cc)
set(fuzz_corpus_root ${CMAKE_CURRENT_LIST_DIR}/corpus)

function(outpost_fuzz_setup target)
  target_link_libraries(${target} PRIVATE outpost::engine outpost_schemas fmt::fmt outpost_warnings)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests ${PROJECT_SOURCE_DIR}/engine/src
                                               ${PROJECT_SOURCE_DIR}/engine ${PROJECT_SOURCE_DIR}/tools/outpostd
                                               ${PROJECT_SOURCE_DIR}/tools)
endfunction()
# The tools' flag parser (tools/common/flags.cc), compiled into the targets that need it rather than linked
# from the tools' library, which exists only with OUTPOST_BUILD_TOOLS=ON.
set(fuzz_outpostd_sources ${PROJECT_SOURCE_DIR}/tools/common/flags.cc)

set(fuzz_names)
foreach(src ${fuzz_target_sources})
  get_filename_component(file ${src} NAME_WE)
  string(REGEX REPLACE "_fuzz$" "" name ${file})
  list(APPEND fuzz_names ${name})
endforeach()

if(OUTPOST_FUZZ)
  foreach(src ${fuzz_target_sources})
    get_filename_component(file ${src} NAME_WE)
    string(REGEX REPLACE "_fuzz$" "" name ${file})
    set(extra)
    if(name MATCHES "^outpostd_")
      set(extra ${fuzz_outpostd_sources})
    endif()
    add_executable(${name}_fuzz ${src} ${extra})
    outpost_fuzz_setup(${name}_fuzz)
    target_link_options(${name}_fuzz PRIVATE -fsanitize=fuzzer)
    add_test(NAME fuzz.${name} COMMAND ${name}_fuzz -runs=0 ${fuzz_corpus_root}/${name})
  endforeach()
else()
  set(registry "#include <cstddef>\n#include <cstdint>\n")
  set(entries "")
  foreach(src ${fuzz_target_sources})
    get_filename_component(file ${src} NAME_WE)
    string(REGEX REPLACE "_fuzz$" "" name ${file})
    set_source_files_properties(${src} PROPERTIES COMPILE_DEFINITIONS
                                LLVMFuzzerTestOneInput=OutpostFuzz_${name})
    string(APPEND registry "extern \"C\" int OutpostFuzz_${name}(const uint8_t*, size_t);\n")
    string(APPEND entries "    {\"${name}\", &OutpostFuzz_${name}},\n")
  endforeach()
  string(APPEND registry "struct FuzzTarget {\n  const char* name;\n  int (*run)(const uint8_t*, size_t);\n};\n"
         "inline const FuzzTarget kFuzzTargets[] = {\n${entries}};\n")
  file(CONFIGURE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/fuzz_generated/fuzz_targets.inc CONTENT "${registry}")
  add_executable(fuzz_replay ${CMAKE_CURRENT_LIST_DIR}/replay_main.cc ${fuzz_target_sources}
                             ${fuzz_outpostd_sources})
  outpost_fuzz_setup(fuzz_replay)
  target_include_directories(fuzz_replay PRIVATE ${CMAKE_CURRENT_BINARY_DIR}/fuzz_generated)
  foreach(name ${fuzz_names})
    add_test(NAME fuzz.${name} COMMAND fuzz_replay ${name} ${fuzz_corpus_root}/${name})
  endforeach()
endif()

add_executable(fuzz_corpus_gen EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/corpus_gen.cc)
outpost_fuzz_setup(fuzz_corpus_gen)
