import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.zip.*;

/**
 * Reads every entry of each ZIP named on the command line, front to back, with
 * java.util.zip.ZipInputStream: the forward-only reader Java programs use on a stream,
 * which trusts the local headers and refuses what readers of the central directory
 * forgive. Reading an entry to its end makes the stream check its CRC
 * and sizes. Prints the archive's path, then "name TAB bytes read" per entry; a refused
 * archive goes to stderr with where it broke, and the exit status is 1.
 */
public class ZipCheck {
    public static void main(String[] archives) {
        PrintStream out = new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.out)), false, StandardCharsets.UTF_8);
        byte[] buffer = new byte[1 << 16];
        boolean refused = false;
        for (String archive : archives) {
            out.println(archive);
            String at = "at its first entry";
            try (ZipInputStream zip = new ZipInputStream(new BufferedInputStream(new FileInputStream(archive)), StandardCharsets.UTF_8)) {
                for (ZipEntry entry; (entry = zip.getNextEntry()) != null; ) {
                    at = "reading " + entry.getName();
                    long size = 0;
                    for (int n; (n = zip.read(buffer)) > 0; ) size += n;
                    out.println(entry.getName() + "\t" + size);
                    at = "after " + entry.getName();
                }
            } catch (IOException e) {
                System.err.println(archive + ": ZipInputStream failed " + at + ": " + e);
                refused = true;
            }
        }
        out.flush();
        System.exit(refused ? 1 : 0);
    }
}
