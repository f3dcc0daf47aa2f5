# liboutpost.so and the install rules (docs/embedding.md). Included at the end of the top CMakeLists.txt,
# once every library has called outpost_library().
include(CMakePackageConfigHelpers)

get_property(outpost_libraries GLOBAL PROPERTY OUTPOST_LIBRARIES)
set(outpost_with)
foreach(part LMDB SQLITE ROCKSDB ZMQ POSTGRESQL MEDIA AUTH CHAT)
  if(OUTPOST_WITH_${part})
    list(APPEND outpost_with ${part})
  endif()
endforeach()

# OUTPOST_BUILD_SHARED: one shared library, liboutpost.so.MAJOR, made of the objects of every library of
# the package (the static libraries stay, for the tools and the tests). Compiled with hidden visibility, it
# exports only what the headers mark OUTPOST_EXPORT (and the C API); the backends' libraries (LMDB, ...)
# are its private dependencies. Its soname changes with every incompatible release (SOVERSION = major).
if(OUTPOST_BUILD_SHARED)
  set(outpost_objects)
  foreach(lib IN LISTS outpost_libraries)
    list(APPEND outpost_objects $<TARGET_OBJECTS:${lib}>)
  endforeach()
  add_library(outpost_shared SHARED ${outpost_objects})
  add_library(outpost::shared ALIAS outpost_shared)
  set_target_properties(outpost_shared PROPERTIES
    OUTPUT_NAME outpost EXPORT_NAME shared VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
    LINKER_LANGUAGE CXX)
  # The static libraries bring their own dependencies (LMDB, ...) to the link; their objects are already in.
  target_link_libraries(outpost_shared PRIVATE ${outpost_libraries})
  target_link_options(outpost_shared PRIVATE -Wl,--no-undefined)
  target_compile_features(outpost_shared INTERFACE cxx_std_20)
  set(outpost_public_includes $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/engine/include>
                              $<BUILD_INTERFACE:${OUTPOST_GENERATED_INCLUDE_DIR}>)
  foreach(adapter chat tasks)
    if(TARGET outpost_${adapter})
      list(APPEND outpost_public_includes $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/adapters/${adapter}/include>)
    endif()
  endforeach()
  target_include_directories(outpost_shared INTERFACE ${outpost_public_includes}
                                                      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(outpost_shared INTERFACE Threads::Threads)
endif()

if(NOT OUTPOST_INSTALL)
  return()
endif()

set(outpost_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/Outpost)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/engine/include/outpost DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${OUTPOST_GENERATED_INCLUDE_DIR}/outpost/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/outpost)
foreach(adapter chat tasks)
  if(TARGET outpost_${adapter})
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/adapters/${adapter}/include/outpost DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
endforeach()

# The static libraries name two internal interface targets as link-only dependencies (no usage
# requirements reach a consumer through them): they go into the export set under internal_* names.
set_target_properties(outpost_warnings PROPERTIES EXPORT_NAME internal_warnings)
set_target_properties(outpost_schemas PROPERTIES EXPORT_NAME internal_schemas)
set(outpost_install_targets ${outpost_libraries} outpost_warnings outpost_schemas)
if(TARGET outpost_shared)
  list(APPEND outpost_install_targets outpost_shared)
endif()
# The conformance suites (a GoogleTest library, not in liboutpost.so) for authors of their own backends.
set(OUTPOST_HAS_CONFORMANCE FALSE)
if(TARGET outpost_conformance)
  set(OUTPOST_HAS_CONFORMANCE TRUE)
  list(APPEND outpost_install_targets outpost_conformance)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/engine/testing/include/outpost DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()
install(TARGETS ${outpost_install_targets} EXPORT OutpostTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT OutpostTargets NAMESPACE outpost:: DESTINATION ${outpost_cmake_dir})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/OutpostConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/OutpostConfig.cmake INSTALL_DESTINATION ${outpost_cmake_dir})
# 0.x: a minor release may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/OutpostConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/OutpostConfig.cmake ${PROJECT_BINARY_DIR}/OutpostConfigVersion.cmake
        DESTINATION ${outpost_cmake_dir})

# outpost.pc: with liboutpost.so, `-loutpost`; else the static libraries in link order, and their
# dependencies for `pkg-config --static`.
set(outpost_pc_requires)
foreach(pair LMDB:lmdb SQLITE:sqlite3 ROCKSDB:rocksdb ZMQ:libzmq POSTGRESQL:libpq POSTGRESQL:libsodium
             AUTH:libsodium MEDIA:libcrypto MEDIA:libcurl MEDIA:vips-cpp)
  string(REPLACE ":" ";" pair ${pair})
  list(GET pair 0 part)
  list(GET pair 1 module)
  if(OUTPOST_WITH_${part})
    list(APPEND outpost_pc_requires ${module})
  endif()
endforeach()
list(REMOVE_DUPLICATES outpost_pc_requires)
list(JOIN outpost_pc_requires ", " OUTPOST_PC_REQUIRES_PRIVATE)
list(JOIN outpost_with ", " OUTPOST_PC_PARTS)
if(TARGET outpost_shared)
  set(OUTPOST_PC_LIBS " -loutpost")
else()
  set(OUTPOST_PC_LIBS)
  # Dependents before what they use: adapters, media, the engine, its layers.
  foreach(lib outpost_tasks outpost_chat outpost_c outpost_auth outpost_media_server outpost_media_client
              outpost_thumbnail outpost_blob_store outpost_engine outpost_server_pg outpost_media_common
              outpost_storage outpost_transport outpost_core)
    if(TARGET ${lib})
      string(APPEND OUTPOST_PC_LIBS " -l${lib}")
    endif()
  endforeach()
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/outpost.pc.in ${PROJECT_BINARY_DIR}/outpost.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/outpost.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
