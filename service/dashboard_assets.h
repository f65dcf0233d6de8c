#ifndef RIFFLE_SERVICE_DASHBOARD_ASSETS_H_
#define RIFFLE_SERVICE_DASHBOARD_ASSETS_H_

// The files of service/dashboard/ as bytes in the binary, so that an installed `riffle` needs
// no asset directory. The definition is generated at build time
// (service/dashboard/embed_assets.cmake, regenerated whenever a file changes); the dashboard
// serves them through FindDashboardAsset (service/dashboard.h).

#include <span>
#include <string_view>

namespace riffle::service {

struct EmbeddedFile {
  std::string_view name;   // the file name in service/dashboard/, e.g. "index.html"
  std::string_view bytes;  // its content, exactly
};

// Every embedded file, in the order the build lists them.
std::span<const EmbeddedFile> DashboardFiles();

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_DASHBOARD_ASSETS_H_
