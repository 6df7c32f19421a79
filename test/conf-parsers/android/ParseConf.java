// Parses each conf named on the command line with the WireGuard Android app's own parser
// (com.wireguard.config.Config.parse from com.wireguard.android:tunnel), one result line per file:
// "ok FILE" or "rejected FILE: SECTION LOCATION REASON TEXT".
import com.wireguard.config.BadConfigException;
import com.wireguard.config.Config;
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;

public final class ParseConf {
    public static void main(final String[] args) throws Exception {
        for (final String file : args) {
            try {
                Config.parse(new ByteArrayInputStream(Files.readAllBytes(Path.of(file))));
                System.out.println("ok " + file);
            } catch (final BadConfigException e) {
                System.out.println("rejected " + file + ": " + e.getSection() + " " + e.getLocation() + " " + e.getReason() + " " + e.getText());
            }
        }
    }
}
