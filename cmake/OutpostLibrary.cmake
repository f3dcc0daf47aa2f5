# outpost_library(TARGET NAME): makes TARGET (a library defined just before) part of the package: the alias
# outpost::NAME for use inside this build and by add_subdirectory consumers, the same name once installed
# (EXPORT_NAME), and a place in the install/export set (cmake/OutpostPackage.cmake installs them all).
# Every library of the project calls it once; nothing else is needed to ship a new library.
function(outpost_library target name)
  add_library(outpost::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  set_property(GLOBAL APPEND PROPERTY OUTPOST_LIBRARIES ${target})
endfunction()

# outpost/version.h, from project(VERSION): OUTPOST_VERSION_MAJOR/MINOR/PATCH and OUTPOST_VERSION_STRING.
set(OUTPOST_GENERATED_INCLUDE_DIR ${PROJECT_BINARY_DIR}/generated-include)
configure_file(${CMAKE_CURRENT_LIST_DIR}/version.h.in ${OUTPOST_GENERATED_INCLUDE_DIR}/outpost/version.h @ONLY)

# Which optional parts this build has, for the sources that open them by URI (OUTPOST_WITH_LMDB=1 or 0).
set(OUTPOST_PART_DEFINITIONS)
foreach(part LMDB SQLITE ROCKSDB ZMQ POSTGRESQL MEDIA)
  if(OUTPOST_WITH_${part})
    list(APPEND OUTPOST_PART_DEFINITIONS OUTPOST_WITH_${part}=1)
  else()
    list(APPEND OUTPOST_PART_DEFINITIONS OUTPOST_WITH_${part}=0)
  endif()
endforeach()
