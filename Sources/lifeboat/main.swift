import Foundation
import LifeboatCommands

exit(await Lifeboat.run(arguments: Array(CommandLine.arguments.dropFirst())))
